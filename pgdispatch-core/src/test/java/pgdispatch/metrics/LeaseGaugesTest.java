package pgdispatch.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.store.StuckRules;
import pgdispatch.store.TaskQueries;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 14, lease statistics: the per-kind gauges a node exports (what the gauges thread does every
 * 15 s: TaskQueries.leaseStats into DispatchMetrics.leases) move with the rows, so the "stale running
 * tasks" alert works from /metrics alone.
 */
class LeaseGaugesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Duration RENEW = Duration.ofSeconds(30);
    private static final Duration NODE_TIMEOUT = Duration.ofSeconds(70);
    private static final StuckRules RULES = new StuckRules(Map.of("*", new StuckRules.Rule(5, Duration.ofSeconds(60),
            false, false)), Duration.ofMinutes(15), 3);
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final DispatchMetrics metrics = new DispatchMetrics(registry);
    private final TaskQueries queries = new TaskQueries(db.database());

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        TaskRows.node(db, "node-live", Duration.ZERO);
        TaskRows.node(db, "node-dead", Duration.ofMinutes(5));
    }

    private void refresh() {
        metrics.leases(queries.leaseStats(RENEW, NODE_TIMEOUT, RULES));
    }

    private double gauge(String name) {
        return registry.get(name).tag("kind", TaskRows.KIND).gauge().value();
    }

    @Test
    void gaugesFollowTheRunningRows() {
        long healthy = TaskRows.running(db, "node-live");
        TaskRows.update(db, healthy, "renew_count = 4, extension_count = 1, last_heartbeat_at = now() - interval '40 seconds'");
        long expiring = TaskRows.running(db, "node-live");
        TaskRows.update(db, expiring, "lease_expires_at = now() + interval '10 seconds', renew_count = 2");
        long orphaned = TaskRows.running(db, "node-dead");
        refresh();

        assertThat(gauge("pgdispatch.running.expiring")).isEqualTo(1);
        assertThat(gauge("pgdispatch.running.stale")).as("the dead node's task").isEqualTo(1);
        assertThat(gauge("pgdispatch.running.stuck")).isZero();
        assertThat(gauge("pgdispatch.running.silence.max")).isBetween(40.0, 45.0);
        assertThat(gauge("pgdispatch.running.renewals.max")).isEqualTo(4);
        assertThat(gauge("pgdispatch.running.renewals.avg")).isEqualTo(2);
        assertThat(gauge("pgdispatch.running.extensions.max")).isEqualTo(1);

        // the reaper takes the orphan back; a reporting handler falls silent past 5 x its cadence
        TaskRows.update(db, orphaned, "status = 'pending', owner_id = NULL, lease_expires_at = NULL");
        TaskRows.update(db, healthy, "progress_count = 4, progress_interval_ms = 20000, last_heartbeat_at = now() - interval '3 minutes'");
        refresh();

        assertThat(gauge("pgdispatch.running.stale")).isZero();
        assertThat(gauge("pgdispatch.running.stuck")).isEqualTo(1);
        assertThat(gauge("pgdispatch.running.silence.max")).isBetween(180.0, 185.0);

        db.exec("UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE status = 'running'");
        refresh();
        assertThat(gauge("pgdispatch.running.expiring")).as("nothing running: zero, not the last value").isZero();
        assertThat(gauge("pgdispatch.running.renewals.max")).isZero();
    }
}

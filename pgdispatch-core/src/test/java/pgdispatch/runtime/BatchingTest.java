package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.HeldLease;
import pgdispatch.store.RenewResult;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 5's cost rules, counted rather than timed: a renewal of every held lease is one write
 * transaction, and a node draining short tasks commits far fewer than once per task (claims and
 * completions batched). Write transactions are counted by the server's next transaction id
 * ({@code pg_snapshot_xmax}, which reading does not move); statements by their distinct {@code now()},
 * which every event row of one statement shares.
 */
class BatchingTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @Test
    void renewingAThousandHeldLeasesIsOneWriteTransaction() {
        UUID incarnation = TaskRows.node(db, "node-a", Duration.ofSeconds(1));
        db.exec("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts, lease_expires_at, last_heartbeat_at)"
                + " SELECT 'noop', 'running', 'node-a', 1, 1, now() + interval '1 minute', now() FROM generate_series(1, 1000)");
        List<HeldLease> held = new ArrayList<>();
        for (var r : db.rows("SELECT id FROM tasks WHERE owner_id = 'node-a'")) {
            held.add(new HeldLease(((Number) r.get("id")).longValue(), 1, Duration.ofMinutes(10)));
        }

        RenewResult r = new TaskStore(db.database()).renewHeld("node-a", incarnation.toString(), held);

        assertThat(r.renewed()).hasSize(1000);
        assertThat(r.nodeRegistered()).isTrue();
        // the transaction that wrote each row version (xmin): one for all 1,000 renewals and the node heartbeat.
        // Not the server's next xid before and after: other databases' sessions (parallel suites) take xids too
        assertThat(db.count("(SELECT DISTINCT xmin::text FROM tasks WHERE owner_id = 'node-a'"
                + " UNION SELECT xmin::text FROM dispatcher_nodes WHERE node_id = 'node-a') x"))
                .as("write transactions for 1,000 renewals and the node heartbeat").isEqualTo(1);
    }

    @Test
    void aNodeDrainingShortTasksCommitsFarFewerThanOncePerTask() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes"); // the other test's node-a row would be a live holder
        new TaskStore(db.database()).enqueueMany("default", "noop", Collections.nCopies(3000, "{}"), 0, 5);
        DispatcherConfig cfg = db.config().withHttpPort(DispatcherConfig.HTTP_OFF);
        Dispatcher d = Dispatcher.builder(cfg).build().start();
        try {
            await().atMost(Duration.ofSeconds(60)).until(() -> db.count("tasks WHERE status = 'succeeded'") == 3000);
        } finally {
            d.stop();
        }
        var s = db.rows("SELECT count(DISTINCT at) FILTER (WHERE event = 'claimed') AS claims,"
                + " count(DISTINCT at) FILTER (WHERE event = 'succeeded') AS completions FROM task_events").get(0);
        assertThat(((Number) s.get("claims")).longValue()).as("claim statements for 3,000 tasks").isLessThanOrEqualTo(300);
        assertThat(((Number) s.get("completions")).longValue()).as("completion statements for 3,000 tasks").isLessThanOrEqualTo(300);
    }
}

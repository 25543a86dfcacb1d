package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 11 item 8: readiness tells the truth. Each part is stalled for real, inside PostgreSQL (a
 * trigger that waits on an advisory lock the test holds, or raises while a switch row exists), and
 * {@link Dispatcher#health()} must name that part; once the stall ends the node is ready again. Before
 * this, readiness asked only the database and stayed 200 through every one of these.
 */
class HealthTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final int STALL_LOCK = 4711;
    private final List<Dispatcher> started = new ArrayList<>();
    private Connection holder;

    @BeforeEach
    void clean() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        db.exec("DROP TABLE IF EXISTS test_fault");
        db.exec("CREATE TABLE test_fault (name text PRIMARY KEY)");
        // waits while the test holds STALL_LOCK (claims: pending -> running; completions: running -> done)
        db.exec("""
                CREATE OR REPLACE FUNCTION test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock_shared(%d);
                    RETURN NEW;
                END $$""".formatted(STALL_LOCK));
        db.exec("""
                CREATE OR REPLACE FUNCTION test_fail_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM test_fault WHERE name = 'renewal') THEN
                        RAISE EXCEPTION 'injected renewal fault';
                    END IF;
                    RETURN NEW;
                END $$""");
        db.exec("DROP TRIGGER IF EXISTS test_stall_claim ON tasks");
        db.exec("DROP TRIGGER IF EXISTS test_stall_complete ON tasks");
        db.exec("DROP TRIGGER IF EXISTS test_stall_schedule ON tasks");
        db.exec("TRUNCATE schedules, schedule_fires");
        db.exec("DROP TRIGGER IF EXISTS test_fail_renewal ON dispatcher_nodes");
        holder = db.database().dataSource().getConnection();
    }

    @AfterEach
    void stopAll() throws Exception {
        try (Statement st = holder.createStatement()) {
            st.execute("SELECT pg_advisory_unlock_all()");
        }
        holder.close();
        db.exec("DELETE FROM test_fault");
        started.forEach(Dispatcher::halt);
    }

    private Dispatcher start() throws InterruptedException {
        DispatcherConfig cfg = db.config().withNode("node-h", List.of("default"), 2).withSocketTimeout(Duration.ZERO)
                .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(3))
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ZERO)
                .withHttpPort(DispatcherConfig.HTTP_OFF);
        Dispatcher d = Dispatcher.builder(cfg).build();
        started.add(d);
        assertThat(d.health().problems()).extracting(Health.Problem::toString).containsExactly("lifecycle: node is new");
        d.start();
        await().atMost(Duration.ofSeconds(10)).until(() -> d.health().ready());
        return d;
    }

    private void holdStallLock() throws Exception {
        try (Statement st = holder.createStatement()) {
            st.execute("SELECT pg_advisory_lock(" + STALL_LOCK + ")");
        }
    }

    private void releaseStallLock() throws Exception {
        try (Statement st = holder.createStatement()) {
            st.execute("SELECT pg_advisory_unlock(" + STALL_LOCK + ")");
        }
    }

    private long enqueue() {
        return new TaskClient(new TaskStore(db.database()), 1 << 20).enqueue(TaskClient.Enqueue.of("noop", "{}"));
    }

    private static List<Health.Part> parts(Dispatcher d) {
        return d.health().problems().stream().map(Health.Problem::part).toList();
    }

    private static double problemGauge(Dispatcher d, String part) {
        return d.metrics().registry().get("pgdispatch.health.problem").tag("part", part).gauge().value();
    }

    @Test
    void aStalledClaimLoopMakesTheNodeNotReadyAndSaysWhy() throws Exception {
        Dispatcher d = start();
        db.exec("CREATE TRIGGER test_stall_claim BEFORE UPDATE ON tasks FOR EACH ROW"
                + " WHEN (OLD.status = 'pending' AND NEW.status = 'running') EXECUTE FUNCTION test_stall()");
        holdStallLock();
        long id = enqueue(); // the claim of it waits in the trigger: the claim loop is stuck in its statement

        await().atMost(Duration.ofSeconds(15)).until(() -> parts(d).contains(Health.Part.CLAIMER));
        Health h = d.health();
        assertThat(h.ready()).isFalse();
        assertThat(h.reason()).containsPattern("claimer: no claim cycle completed for \\d+\\.\\ds \\(bound 2\\.8s\\)");
        assertThat(parts(d)).doesNotContain(Health.Part.RENEWER, Health.Part.COMPLETER, Health.Part.DATABASE);
        assertThat(problemGauge(d, "claimer")).isEqualTo(1.0);
        assertThat(d.metrics().registry().get("pgdispatch.node.ready").gauge().value()).isZero();
        assertThat(d.metrics().registry().get("pgdispatch.claimer.cycle.age").gauge().value()).isGreaterThan(2.8);
        // stored on the node row after a renewal tick, for `pgdispatch status` on any host
        await().atMost(Duration.ofSeconds(10)).until(() -> String.valueOf(
                db.rows("SELECT health FROM dispatcher_nodes WHERE node_id = 'node-h'").get(0).get("health")).startsWith("claimer: "));

        releaseStallLock();
        await().atMost(Duration.ofSeconds(15)).until(() -> d.health().ready());
        await().atMost(Duration.ofSeconds(10)).until(() -> db.count("tasks WHERE id = " + id + " AND status = 'succeeded'") == 1);
        await().atMost(Duration.ofSeconds(10)).until(() ->
                db.rows("SELECT health FROM dispatcher_nodes WHERE node_id = 'node-h'").get(0).get("health") == null);
        assertThat(problemGauge(d, "claimer")).isZero();
    }

    @Test
    void aStalledSchedulerMakesTheNodeNotReadyAndSaysWhy() throws Exception {
        Dispatcher d = start();
        // the insert of the schedule's task waits in the trigger: the scheduler's run is stuck in its statement
        db.exec("CREATE TRIGGER test_stall_schedule BEFORE INSERT ON tasks FOR EACH ROW"
                + " WHEN (NEW.kind = 'stalled') EXECUTE FUNCTION test_stall()");
        holdStallLock();
        new pgdispatch.store.ScheduleStore(db.database().dataSource())
                .add(pgdispatch.store.Schedule.every("stalled", Duration.ofSeconds(1), "stalled"), true, "test");

        await().atMost(Duration.ofSeconds(15)).until(() -> parts(d).contains(Health.Part.SCHEDULER));
        assertThat(d.health().reason()).containsPattern("scheduler: no run completed for \\d+\\.\\ds after it was due \\(bound 2\\.0s\\)");
        assertThat(parts(d)).doesNotContain(Health.Part.CLAIMER, Health.Part.RENEWER, Health.Part.COMPLETER, Health.Part.DATABASE);
        assertThat(problemGauge(d, "scheduler")).isEqualTo(1.0);

        releaseStallLock();
        await().atMost(Duration.ofSeconds(15)).until(() -> d.health().ready());
        assertThat(db.count("schedule_fires WHERE schedule = 'stalled'")).isPositive();
        assertThat(problemGauge(d, "scheduler")).isZero();
    }

    @Test
    void aFailedRenewalMakesTheNodeNotReadyAtOnce() throws Exception {
        Dispatcher d = start();
        db.exec("CREATE TRIGGER test_fail_renewal BEFORE UPDATE ON dispatcher_nodes FOR EACH ROW"
                + " WHEN (NEW.last_seen_at IS DISTINCT FROM OLD.last_seen_at) EXECUTE FUNCTION test_fail_renewal()");
        db.exec("INSERT INTO test_fault VALUES ('renewal')");

        await().atMost(Duration.ofSeconds(10)).until(() -> parts(d).contains(Health.Part.RENEWER));
        assertThat(d.health().reason()).containsPattern("renewer: last renewal failed \\(\\d+ in a row, last success"
                + " \\d+\\.\\ds ago\\): .*injected renewal fault");
        assertThat(problemGauge(d, "renewer")).isEqualTo(1.0);
        assertThat(d.metrics().registry().get("pgdispatch.renewer.failures").gauge().value()).isGreaterThanOrEqualTo(1.0);

        db.exec("DELETE FROM test_fault");
        await().atMost(Duration.ofSeconds(10)).until(() -> d.health().ready());
        assertThat(d.metrics().registry().get("pgdispatch.renewer.failures").gauge().value()).isZero();
    }

    @Test
    void aStuckCompleterMakesTheNodeNotReady() throws Exception {
        Dispatcher d = start();
        db.exec("CREATE TRIGGER test_stall_complete BEFORE UPDATE ON tasks FOR EACH ROW"
                + " WHEN (OLD.status = 'running' AND NEW.status <> 'running') EXECUTE FUNCTION test_stall()");
        holdStallLock();
        long id = enqueue(); // runs at once; writing its outcome waits in the trigger

        await().atMost(Duration.ofSeconds(15)).until(() -> parts(d).contains(Health.Part.COMPLETER));
        assertThat(d.health().reason()).containsPattern("completer: 1 outcomes unwritten, the oldest for \\d+\\.\\ds \\(bound 2\\.0s\\)");
        assertThat(problemGauge(d, "completer")).isEqualTo(1.0);
        assertThat(d.metrics().registry().get("pgdispatch.completer.unwritten").gauge().value()).isEqualTo(1.0);

        releaseStallLock();
        await().atMost(Duration.ofSeconds(15)).until(() -> d.health().ready());
        assertThat(db.count("tasks WHERE id = " + id + " AND status = 'succeeded'")).isOne();
    }

    @Test
    void aStoppedNodeIsNotReady() throws Exception {
        Dispatcher d = start();
        d.stop();
        assertThat(d.health().problems()).extracting(Health.Problem::toString).containsExactly("lifecycle: node is stopped");
        assertThat(db.rows("SELECT stopped_at FROM dispatcher_nodes WHERE node_id = 'node-h'").get(0))
                .extractingByKey("stopped_at").isNotNull();
    }
}

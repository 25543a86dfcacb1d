package pgdispatch.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

class ReaperTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private TaskStore store;
    private DispatchMetrics metrics;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        store = new TaskStore(db.database());
        metrics = DispatchMetrics.noop();
    }

    private Reaper reaper(int maxRequeue, int batch) {
        return new Reaper(new Reaper.Config(Duration.ofSeconds(30), Duration.ofMinutes(15), Duration.ofSeconds(90), maxRequeue, batch),
                store, metrics);
    }

    @Test
    void configRejectsImpossibleValues() {
        assertThatThrownBy(() -> new Reaper.Config(Duration.ofSeconds(30), Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 0))
                .hasMessage("Reaper.Config.batch must be > 0, got 0");
        assertThatThrownBy(() -> new Reaper.Config(Duration.ZERO, Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 1))
                .hasMessage("Reaper.Config.interval must be > 0, got PT0S");
        assertThatThrownBy(() -> new Reaper.Config(Duration.ofSeconds(1), Duration.ofMinutes(15), Duration.ofSeconds(90), -1, 1))
                .hasMessage("Reaper.Config.maxRequeue must be >= 0, got -1");
    }

    @Test
    void oneRunRequeuesWithinTheBudgetAndQuarantinesBeyondIt() {
        long fresh = TaskRows.running(db, "node-a");
        long expired = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
        long spent = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
        TaskRows.update(db, spent, "requeue_count = 3");

        Reaper.Result r = reaper(3, 200).runOnce();

        assertThat(r.requeued()).isEqualTo(1);
        assertThat(r.quarantined()).isEqualTo(1);
        assertThat(r.skipped()).isFalse();
        assertThat(db.rows("SELECT id, status FROM tasks ORDER BY id")).extracting(m -> m.get("status"))
                .containsExactly("running", "pending", "quarantined");
        assertThat(db.count("tasks WHERE id = " + fresh + " AND status = 'running'")).isEqualTo(1);
        assertThat(db.count("tasks WHERE id = " + expired + " AND requeue_count = 1")).isEqualTo(1);
        assertThat(metrics.registry().get("pgdispatch.reaper.rows").tag("action", "quarantine").counter().count()).isEqualTo(1);
    }

    @Test
    void oneRunGoesOnInBatchesUntilABatchComesBackShort() {
        for (int i = 0; i < 7; i++) TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));

        Reaper.Result r = reaper(3, 2).runOnce();

        assertThat(r.requeued()).isEqualTo(7);
        assertThat(r.batches()).isEqualTo(4);
        assertThat(db.count("tasks WHERE status = 'pending'")).isEqualTo(7);
    }

    @Test
    void aSecondRunChangesNothing() {
        TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
        reaper(3, 200).runOnce();
        var before = TaskRows.allRows(db);

        Reaper.Result second = reaper(3, 200).runOnce();

        assertThat(second.empty()).isTrue();
        assertThat(TaskRows.allRows(db)).isEqualTo(before);
    }

    @Test
    void planChangesNothing() {
        TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
        var before = TaskRows.allRows(db);

        assertThat(reaper(3, 200).plan(100)).singleElement().satisfies(t -> assertThat(t.action()).isEqualTo("requeue"));
        assertThat(TaskRows.allRows(db)).isEqualTo(before);
    }

    @Test
    void stopBeforeStartAndDoubleStopAreHarmless() {
        Reaper r = reaper(3, 200);
        r.stop();
        r.stop();
        r.start(); // after stop: stays stopped
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().equals("pgdispatch-reaper") && t.isAlive());
    }

    @Test
    void theServiceSweepsOnItsOwnAndStopsWhenAsked() {
        TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
        Reaper r = new Reaper(new Reaper.Config(Duration.ofMillis(100), Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 200),
                store, metrics);
        r.start();
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'pending'") == 1);
        r.stop();
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().equals("pgdispatch-reaper") && t.isAlive());
    }
}

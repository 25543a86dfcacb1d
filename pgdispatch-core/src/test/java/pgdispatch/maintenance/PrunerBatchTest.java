package pgdispatch.maintenance;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/** Retention deletes old finished tasks and their events in small batches, each its own statement. */
class PrunerBatchTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void rows() {
        db.exec("TRUNCATE tasks, task_event_log");
        // 25 succeeded two days ago (with one event each), 5 succeeded just now, 3 quarantined long ago
        db.exec("INSERT INTO tasks (kind, status, finished_at) SELECT 'noop', 'succeeded', now() - interval '2 days'"
                + " FROM generate_series(1, 25)");
        db.exec("INSERT INTO tasks (kind, status, finished_at) SELECT 'noop', 'succeeded', now() FROM generate_series(1, 5)");
        db.exec("INSERT INTO tasks (kind, status, finished_at) SELECT 'noop', 'quarantined', now() - interval '2 days'"
                + " FROM generate_series(1, 3)");
        db.exec("INSERT INTO task_events (task_id, event) SELECT id, 'succeeded' FROM tasks");
    }

    @Test
    void deletesOldFinishedTasksAndTheirEventsInBatchesOfTheConfiguredSize() {
        Pruner p = new Pruner(new Pruner.Config(Duration.ofMinutes(5), Duration.ofDays(1), 10),
                new TaskStore(db.database()), DispatchMetrics.noop());
        Pruner.Result r = p.runOnce();
        assertThat(r).isEqualTo(new Pruner.Result(25, 3)); // 10 + 10 + 5: a short batch ends the run
        assertThat(db.count("tasks")).isEqualTo(8);
        assertThat(db.count("tasks WHERE status = 'quarantined'")).isEqualTo(3);
        assertThat(db.count("task_events")).isEqualTo(8);
        assertThat(p.runOnce()).isEqualTo(new Pruner.Result(0, 1));
    }
}

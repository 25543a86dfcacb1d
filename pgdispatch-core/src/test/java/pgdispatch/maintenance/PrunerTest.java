package pgdispatch.maintenance;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.TaskStatus;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

class PrunerTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @Test
    void deletesOldFinishedAndCompensatedTasksWithTheirEventsInBatchesAndKeepsQuarantinedAndRecentOnes() {
        for (int i = 0; i < 5; i++) {
            long id = TaskRows.terminal(db, TaskStatus.SUCCEEDED);
            TaskRows.update(db, id, "finished_at = now() - interval '8 days'");
            db.exec("INSERT INTO task_events (task_id, event) VALUES (" + id + ", 'succeeded')");
        }
        // a compensated task (its compensation step succeeded) is finished too (before V12 it was kept forever)
        long compensated = TaskRows.terminal(db, TaskStatus.COMPENSATED);
        TaskRows.update(db, compensated, "finished_at = now() - interval '8 days'");
        db.exec("INSERT INTO task_events (task_id, event) VALUES (" + compensated + ", 'compensated')");
        long quarantined = TaskRows.terminal(db, TaskStatus.QUARANTINED);
        TaskRows.update(db, quarantined, "finished_at = now() - interval '30 days'");
        long recent = TaskRows.terminal(db, TaskStatus.FAILED);
        long pending = TaskRows.pending(db);

        Pruner.Result r = new Pruner(new Pruner.Config(Duration.ofMinutes(5), Duration.ofDays(7), 2),
                new TaskStore(db.database()), DispatchMetrics.noop()).runOnce();

        assertThat(r.deleted()).isEqualTo(6);
        assertThat(r.batches()).isEqualTo(4);
        assertThat(db.rows("SELECT id FROM tasks ORDER BY id")).extracting(m -> m.get("id"))
                .containsExactly(quarantined, recent, pending);
        assertThat(db.count("task_events")).isZero();
    }
}

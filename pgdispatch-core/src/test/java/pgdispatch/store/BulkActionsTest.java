package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/** Operator actions on every task a filter selects: one statement, one audited event per task. */
class BulkActionsTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private TaskStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log");
        store = new TaskStore(db.database());
    }

    private static TaskFilter filter(List<TaskStatus> statuses, String kind, String queue, Duration olderThan, int limit) {
        return new TaskFilter(statuses, kind, queue, olderThan, limit);
    }

    private Map<String, Object> lastEvent(long id) throws Exception {
        Map<String, Object> e = db.rows("SELECT event, owner_id, detail::text AS detail FROM task_events WHERE task_id = " + id
                + " ORDER BY id DESC LIMIT 1").get(0);
        e.put("detail", new ObjectMapper().readValue((String) e.get("detail"), Map.class));
        return e;
    }

    @Test
    void cancelsThePendingAndRunningTasksOfOneKindWithTheReasonInEachEvent() throws Exception {
        long pending = TaskRows.pending(db, "default", "report");
        long running = TaskRows.running(db, "node-a");
        TaskRows.update(db, running, "kind = 'report'");
        long otherKind = TaskRows.pending(db);
        long done = TaskRows.terminal(db, TaskStatus.SUCCEEDED);
        TaskRows.update(db, done, "kind = 'report'");

        List<TaskStore.MatchedTask> changed = store.applyMatching(BulkAction.CANCEL,
                filter(BulkAction.CANCEL.statuses(null), "report", null, null, 100), "bad deploy", "ops:alice");

        assertThat(changed).extracting(TaskStore.MatchedTask::id, TaskStore.MatchedTask::from)
                .containsExactly(org.assertj.core.groups.Tuple.tuple(pending, TaskStatus.PENDING),
                        org.assertj.core.groups.Tuple.tuple(running, TaskStatus.RUNNING));
        assertThat(db.count("tasks WHERE status = 'cancelled' AND last_error = 'bad deploy' AND finished_at IS NOT NULL")).isEqualTo(2);
        assertThat(TaskRows.row(db, otherKind).get("status")).isEqualTo("pending");
        assertThat(TaskRows.row(db, done).get("status")).isEqualTo("succeeded");
        Map<String, Object> ev = lastEvent(running);
        assertThat(ev.get("event")).isEqualTo("cancelled");
        assertThat(ev.get("owner_id")).isEqualTo("node-a");
        assertThat(ev.get("detail")).isEqualTo(Map.of("by", "operator", "actor", "ops:alice", "reason", "bad deploy",
                "from", "running", "bulk", true));
    }

    @Test
    void retriesFailedTasksOfAQueueOlderThanAnAgeOnly() throws Exception {
        long old = TaskRows.terminal(db, TaskStatus.FAILED);
        TaskRows.update(db, old, "queue = 'mail', updated_at = now() - interval '2 hours'");
        long recent = TaskRows.terminal(db, TaskStatus.FAILED);
        TaskRows.update(db, recent, "queue = 'mail'");
        long otherQueue = TaskRows.terminal(db, TaskStatus.FAILED);
        TaskRows.update(db, otherQueue, "updated_at = now() - interval '2 hours'");

        List<TaskStore.MatchedTask> changed = store.applyMatching(BulkAction.RETRY,
                filter(List.of(TaskStatus.FAILED), null, "mail", Duration.ofHours(1), 100), "relay fixed", "ops:bob");

        assertThat(changed).extracting(TaskStore.MatchedTask::id).containsExactly(old);
        assertThat(TaskRows.row(db, old)).containsEntry("status", "pending").containsEntry("attempts", 0)
                .containsEntry("owner_id", null);
        assertThat(lastEvent(old)).containsEntry("event", "retried_by_operator");
        assertThat(TaskRows.row(db, recent).get("status")).isEqualTo("failed");
        assertThat(TaskRows.row(db, otherQueue).get("status")).isEqualTo("failed");
    }

    @Test
    void takesAtMostTheLimitLowestIdFirstAndTheDryRunListsExactlyThoseWithoutChangingThem() {
        long[] ids = new long[5];
        for (int i = 0; i < 5; i++) ids[i] = TaskRows.pending(db);
        TaskFilter three = filter(List.of(TaskStatus.PENDING), TaskRows.KIND, null, null, 3);
        var before = TaskRows.allRows(db);

        List<TaskStore.MatchedTask> plan = store.planMatching(BulkAction.QUARANTINE, three);

        assertThat(TaskRows.allRows(db)).isEqualTo(before);
        assertThat(db.count("task_events")).isZero();
        List<TaskStore.MatchedTask> done = store.applyMatching(BulkAction.QUARANTINE, three, "poison", "t");
        assertThat(done).isEqualTo(plan).extracting(TaskStore.MatchedTask::id).containsExactly(ids[0], ids[1], ids[2]);
        assertThat(db.count("tasks WHERE status = 'quarantined' AND last_error = 'quarantined by operator: poison'")).isEqualTo(3);
        assertThat(db.count("task_events WHERE event = 'quarantined'")).isEqualTo(3);
    }

    @Test
    void aStatusTheActionDoesNotApplyToIsRefusedNamingWhatItAppliesTo() {
        assertThatThrownBy(() -> BulkAction.RETRY.statuses(TaskStatus.PENDING)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--status=pending: retry applies only to succeeded, failed, cancelled, quarantined");
        assertThatThrownBy(() -> store.applyMatching(BulkAction.CANCEL, filter(List.of(TaskStatus.FAILED), null, null, null, 1), null, "t"))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("cancel does not apply to failed tasks");
        assertThat(BulkAction.RETRY.statuses(null)).as("a succeeded task re-runs only when asked")
                .containsExactlyInAnyOrder(TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUARANTINED);
    }
}

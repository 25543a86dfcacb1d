package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/** The emergency cleanup ops run from psql: {@code pgdispatch_reap_stale(grace, max_requeue, batch, dry_run)}. */
class CleanupFunctionTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static final Duration GRACE = Duration.ofMinutes(15);

    @BeforeEach
    void emptyTables() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
    }

    @Test
    void dryRunListsStaleRunningRowsWithActionAndReasonAndChangesNothing() {
        long expired = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(20));
        long overBudget = TaskRows.runningLeaseExpired(db, "node-b", Duration.ofMinutes(30));
        TaskRows.update(db, overBudget, "requeue_count = 3");
        long legacy = TaskRows.legacyRunning(db, Duration.ofHours(1));
        TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(5));
        TaskRows.running(db, "node-a");
        TaskRows.runningHeartbeatOld(db, "node-a", Duration.ofHours(1));
        TaskRows.pending(db);
        TaskRows.terminal(db, TaskStatus.FAILED);
        Map<Long, Map<String, Object>> before = TaskRows.allRows(db);

        List<Map<String, Object>> plan = reap(GRACE, 3, 200, true);

        assertThat(plan).extracting(r -> r.get("task_id"), r -> r.get("previous_owner"), r -> r.get("action"))
                .containsExactly(
                        tuple(expired, "node-a", "requeue"),
                        tuple(overBudget, "node-b", "quarantine"),
                        tuple(legacy, null, "requeue"));
        assertThat(plan).extracting(r -> (String) r.get("reason")).satisfiesExactly(
                r -> assertThat(r).startsWith("lease expired at "),
                r -> assertThat(r).startsWith("lease expired at "),
                r -> assertThat(r).startsWith("no lease; last activity at "));
        assertThat(TaskRows.allRows(db)).isEqualTo(before);
        assertThat(db.count("task_events")).isZero();
    }

    @Test
    void realRunRequeuesStaleRowsWithinTheBudget() {
        long expired = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(20));
        TaskRows.update(db, expired, "requeue_count = 2, lease_token = 7, last_error = 'earlier failure'");
        long legacy = TaskRows.legacyRunning(db, Duration.ofHours(1));

        List<Map<String, Object>> done = reap(GRACE, 3, 200, false);

        assertThat(done).extracting(r -> r.get("task_id"), r -> r.get("previous_owner"), r -> r.get("action"))
                .containsExactly(tuple(expired, "node-a", "requeue"), tuple(legacy, null, "requeue"));
        assertThat(TaskRows.row(db, expired))
                .containsEntry("status", "pending").containsEntry("owner_id", null).containsEntry("requeue_count", 3)
                .containsEntry("lease_expires_at", null).containsEntry("lease_token", 7L)
                .containsEntry("last_error", "earlier failure").containsEntry("finished_at", null);
        assertThat(TaskRows.row(db, legacy))
                .containsEntry("status", "pending").containsEntry("requeue_count", 1);
        assertThat(db.count("tasks WHERE status = 'pending' AND run_at BETWEEN now() - interval '1 minute' AND now()"))
                .as("requeued rows are due at once").isEqualTo(2);
        assertThat(db.rows("SELECT task_id, event, owner_id, lease_token, detail->>'by' AS by,"
                + " detail->>'reason' AS reason FROM task_events ORDER BY id"))
                .extracting(r -> r.get("task_id"), r -> r.get("event"), r -> r.get("owner_id"), r -> r.get("lease_token"),
                        r -> r.get("by"))
                .containsExactly(
                        tuple(expired, "requeued", "node-a", 7L, "pgdispatch_reap_stale"),
                        tuple(legacy, "requeued", null, 0L, "pgdispatch_reap_stale"));
    }

    @Test
    void realRunQuarantinesRowsPastTheBudgetWithTheReason() {
        long overBudget = TaskRows.runningLeaseExpired(db, "node-b", Duration.ofMinutes(30));
        TaskRows.update(db, overBudget, "requeue_count = 3");

        List<Map<String, Object>> done = reap(GRACE, 3, 200, false);

        assertThat(done).extracting(r -> r.get("task_id"), r -> r.get("action"))
                .containsExactly(tuple(overBudget, "quarantine"));
        Map<String, Object> row = TaskRows.row(db, overBudget);
        assertThat(row).containsEntry("status", "quarantined").containsEntry("requeue_count", 3)
                .containsEntry("owner_id", "node-b").containsEntry("lease_expires_at", null);
        assertThat(row.get("finished_at")).isNotNull();
        assertThat((String) row.get("last_error"))
                .startsWith("quarantined: requeue budget 3 exhausted; lease expired at ");
        assertThat(db.rows("SELECT event, detail->>'reason' AS reason FROM task_events WHERE task_id = " + overBudget))
                .extracting(r -> r.get("event"), r -> r.get("reason"))
                .containsExactly(tuple("quarantined", done.get(0).get("reason")));
    }

    @Test
    void smallBatchesStillMoveEveryStaleRow() {
        for (int i = 0; i < 5; i++) TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(20 + i));

        List<Map<String, Object>> done = reap(GRACE, 3, 2, false);

        assertThat(done).hasSize(5);
        assertThat(db.count("tasks WHERE status = 'pending'")).isEqualTo(5);
        assertThat(db.count("task_events WHERE event = 'requeued'")).isEqualTo(5);
        assertThat(reap(GRACE, 3, 2, false)).as("second run").isEmpty();
    }

    @Test
    void batchEqualToTheStaleCountEndsAfterAnEmptyBatch() {
        for (int i = 0; i < 4; i++) TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(20 + i));

        assertThat(reap(GRACE, 3, 2, false)).hasSize(4);
        assertThat(db.count("tasks WHERE status = 'running'")).isZero();
    }

    @Test
    void leavesLiveLeasesAndLeasesWithinTheGraceAlone() {
        TaskRows.running(db, "node-a");
        TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(14));
        TaskRows.legacyRunning(db, Duration.ofMinutes(1));
        TaskRows.pending(db);
        Map<Long, Map<String, Object>> before = TaskRows.allRows(db);

        assertThat(reap(GRACE, 3, 200, false)).isEmpty();

        assertThat(TaskRows.allRows(db)).isEqualTo(before);
        assertThat(db.count("task_events")).isZero();
    }

    @Test
    void rejectsBadArgumentsNamingTheParameter() {
        long expired = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(20));
        Map<String, Object> before = TaskRows.row(db, expired);

        assertThatThrownBy(() -> db.rows("SELECT * FROM pgdispatch_reap_stale(interval '-1 minute', 3, 200, false)"))
                .hasMessageContaining("pgdispatch_reap_stale: p_grace=-00:01:00 must be a non-negative interval");
        assertThatThrownBy(() -> db.rows("SELECT * FROM pgdispatch_reap_stale(NULL, 3, 200, false)"))
                .hasMessageContaining("pgdispatch_reap_stale: p_grace=<NULL> must be a non-negative interval");
        assertThatThrownBy(() -> db.rows("SELECT * FROM pgdispatch_reap_stale(interval '1 minute', -1, 200, false)"))
                .hasMessageContaining("pgdispatch_reap_stale: p_max_requeue=-1 must be >= 0");
        assertThatThrownBy(() -> db.rows("SELECT * FROM pgdispatch_reap_stale(interval '1 minute', 3, 0, false)"))
                .hasMessageContaining("pgdispatch_reap_stale: p_batch=0 must be >= 1");
        assertThatThrownBy(() -> db.rows("SELECT * FROM pgdispatch_reap_stale(interval '1 minute', 3, NULL, false)"))
                .hasMessageContaining("pgdispatch_reap_stale: p_batch=<NULL> must be >= 1");
        assertThat(TaskRows.row(db, expired)).isEqualTo(before);
    }

    @Test
    void defaultsAreADryRunWithFifteenMinutesGrace() {
        long expired = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(16));
        TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(14));
        Map<Long, Map<String, Object>> before = TaskRows.allRows(db);

        assertThat(db.rows("SELECT * FROM pgdispatch_reap_stale()")).extracting(r -> r.get("task_id"))
                .containsExactly(expired);
        assertThat(TaskRows.allRows(db)).isEqualTo(before);
    }

    private static List<Map<String, Object>> reap(Duration grace, int maxRequeue, int batch, boolean dryRun) {
        return db.rows("SELECT * FROM pgdispatch_reap_stale(" + TaskRows.interval(grace) + ", " + maxRequeue + ", "
                + batch + ", " + dryRun + ")");
    }
}

package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * V13: a plain claim and its success write no task_event_log row; the task_events view shows them from
 * the task row with the ids reserved at the transition, and whatever changes the row afterwards writes
 * them to the log first (tasks_trail), with the values they had. The trail a reader sees is the one
 * V12 stored: same events, ids in transition order, owners, tokens, times and details.
 */
class AuditTrailTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Duration LEASE = Duration.ofMinutes(5);
    private TaskStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        store = new TaskStore(db.database());
    }

    private long enqueue() {
        return store.enqueue(new NewTask("default", "noop", "{}", 0, null, 3, null));
    }

    private ClaimedTask claim(String owner, boolean takeOver) {
        List<ClaimedTask> got = store.claimDue(new ClaimRequest(owner, List.of("default"), Map.of("noop", LEASE), 1, 3, takeOver));
        assertThat(got).hasSize(1);
        return got.get(0);
    }

    /** The trail of task {@code id} as the view shows it: event@owner/token, in id order. */
    private List<String> trail(long id) {
        return db.rows("SELECT event, owner_id, lease_token FROM task_events WHERE task_id = " + id + " ORDER BY id")
                .stream().map(r -> r.get("event") + "@" + r.get("owner_id") + "/" + r.get("lease_token")).toList();
    }

    private long stored(long id) {
        return db.count("task_event_log WHERE task_id = " + id);
    }

    @Test
    void theHappyPathWritesNoRowAndTheViewShowsBothFromTheTaskRow() {
        long id = enqueue();
        ClaimedTask t = claim("node-a", false);
        assertThat(trail(id)).containsExactly("claimed@node-a/1");
        store.completeIfOwned("node-a", List.of(new Outcome.Success(id, t.leaseToken(), "{\"ok\":1}")));

        assertThat(stored(id)).isZero();
        assertThat(trail(id)).containsExactly("claimed@node-a/1", "succeeded@node-a/1");
        // the times are the transitions' (the claim's and the completion's now()), the detail the claim's
        var rows = db.rows("""
                SELECT e.event, e.at = CASE e.event WHEN 'claimed' THEN t.started_at ELSE t.finished_at END AS at_ok,
                       e.detail::text AS detail, e.id
                  FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE e.task_id = %d ORDER BY e.id""".formatted(id));
        assertThat(rows).extracting(r -> r.get("event") + " " + r.get("at_ok") + " " + r.get("detail"))
                .containsExactly("claimed true {\"attempt\": 1}", "succeeded true null");
        // the ids come from the log's own sequence: a later stored event sorts after them
        db.exec("INSERT INTO task_event_log (task_id, event) VALUES (" + id + ", 'retried_by_operator')");
        assertThat(db.rows("SELECT event FROM task_events WHERE task_id = " + id + " ORDER BY id"))
                .extracting(r -> r.get("event")).containsExactly("claimed", "succeeded", "retried_by_operator");
    }

    @Test
    void aFailedAttemptIsWrittenToTheLogBeforeItsRetryWithTheValuesItHad() {
        long id = enqueue();
        ClaimedTask first = claim("node-a", false);
        String startedAt = (String) db.rows("SELECT started_at::text AS s FROM tasks WHERE id = " + id).get(0).get("s");
        store.completeIfOwned("node-a", List.of(new Outcome.Failure(id, first.leaseToken(), "boom", false, Duration.ZERO)));

        // the row is pending with no owner now; the claim it no longer shows is in the log, as it was
        assertThat(db.rows("SELECT event, owner_id, lease_token, at::text AS at, detail::text AS d FROM task_event_log"
                + " WHERE task_id = " + id + " ORDER BY id")).extracting(r -> r.get("event") + "@" + r.get("owner_id") + "/"
                + r.get("lease_token") + " " + r.get("d") + (r.get("event").equals("claimed") ? " at " + r.get("at") : ""))
                .first().isEqualTo("claimed@node-a/1 {\"attempt\": 1} at " + startedAt);
        assertThat(db.count("tasks WHERE id = " + id + " AND claim_event_id IS NULL AND done_event_id IS NULL")).isOne();

        ClaimedTask second = claim("node-b", false);
        store.completeIfOwned("node-b", List.of(new Outcome.Success(id, second.leaseToken(), null)));
        assertThat(trail(id)).containsExactly("claimed@node-a/1", "retry_scheduled@node-a/1", "claimed@node-b/2",
                "succeeded@node-b/2");
        assertThat(stored(id)).isEqualTo(2);
        assertThat(db.rows("SELECT detail->>'attempt' AS a FROM task_events WHERE task_id = " + id + " AND event = 'claimed' ORDER BY id"))
                .extracting(r -> r.get("a")).containsExactly("1", "2");
    }

    @Test
    void aTakeOverWritesTheLostAttemptsClaimThenItsOwn() {
        long id = enqueue();
        claim("node-a", false);
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = " + id);
        ClaimedTask taken = claim("node-b", true);

        assertThat(taken.leaseToken()).isEqualTo(2);
        assertThat(trail(id)).containsExactly("claimed@node-a/1", "claimed@node-b/2");
        assertThat(db.rows("SELECT detail->>'took_over_from' AS f FROM task_event_log WHERE task_id = " + id + " ORDER BY id"))
                .extracting(r -> r.get("f")).containsExactly(null, "node-a");
        // a completion from the superseded lease is refused and recorded; the new owner's is derived
        store.completeIfOwned("node-a", List.of(new Outcome.Success(id, 1, null)));
        store.completeIfOwned("node-b", List.of(new Outcome.Success(id, 2, null)));
        assertThat(trail(id)).containsExactly("claimed@node-a/1", "claimed@node-b/2", "completion_refused@node-a/1",
                "succeeded@node-b/2");
    }

    @Test
    void anOperatorsRetryOfASucceededTaskKeepsItsSuccessInTheTrail() {
        long id = enqueue();
        ClaimedTask t = claim("node-a", false);
        store.completeIfOwned("node-a", List.of(new Outcome.Success(id, t.leaseToken(), null)));
        assertThat(store.retry(id, "run it again")).isTrue();

        assertThat(trail(id)).containsExactly("claimed@node-a/1", "succeeded@node-a/1", "retried_by_operator@null/1");
        assertThat(stored(id)).isEqualTo(3);
        ClaimedTask again = claim("node-b", false);
        assertThat(trail(id)).containsExactly("claimed@node-a/1", "succeeded@node-a/1", "retried_by_operator@null/1",
                "claimed@node-b/2");
        assertThat(again.attempt()).isEqualTo(1);
    }

    @Test
    void plainSqlThatRewritesTheRowStillLeavesTheHistoryItReplaces() {
        long id = enqueue();
        ClaimedTask t = claim("node-a", false);
        store.completeIfOwned("node-a", List.of(new Outcome.Success(id, t.leaseToken(), null)));
        // an operator's hand-edit, outside pgdispatch's statements
        db.exec("UPDATE tasks SET status = 'pending', owner_id = NULL, finished_at = NULL WHERE id = " + id);
        assertThat(trail(id)).containsExactly("claimed@node-a/1", "succeeded@node-a/1");
        assertThat(stored(id)).isEqualTo(2);
        // a reserved id belongs only on a running or succeeded row: the invariant the view rests on
        assertThatThrownBy(() -> db.exec("UPDATE tasks SET claim_event_id = 1 WHERE id = " + id))
                .hasMessageContaining("tasks_claim_event_id_check");
    }

    @Test
    void theReaperAndACancelWriteTheClaimBeforeTheirOwnEvent() {
        long requeued = enqueue();
        long cancelled = enqueue();
        store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("noop", LEASE), 2, 3, false));
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 hour' WHERE id = " + requeued);
        store.requeueStale(Duration.ofMinutes(1), Duration.ofMinutes(1), 3, 100);
        store.cancel(cancelled, "not needed");

        assertThat(trail(requeued)).containsExactly("claimed@node-a/1", "requeued@node-a/1");
        assertThat(trail(cancelled).get(0)).isEqualTo("claimed@node-a/1");
        assertThat(trail(cancelled).get(1)).startsWith("cancelled@");
        assertThat(db.count("tasks WHERE claim_event_id IS NOT NULL OR done_event_id IS NOT NULL")).isZero();
    }

    @Test
    void anInsertThroughTheViewsOldNameIsStoredAndAnswersItsId() {
        long id = enqueue();
        var row = db.rows("INSERT INTO task_events (task_id, event, owner_id, lease_token) VALUES (" + id
                + ", 'claimed', 'old-node', 1) RETURNING id, at").get(0);
        assertThat(row.get("id")).isNotNull();
        assertThat(row.get("at")).isNotNull();
        assertThat(stored(id)).isOne();
        assertThat(trail(id)).containsExactly("claimed@old-node/1");
    }

    @Test
    void aRowInsertedByPlainSqlWithAReservationTakenElsewhereStillMovesAndKeepsItsHistory() {
        long other = enqueue();
        long stored = ((Number) db.rows("INSERT INTO task_event_log (task_id, event) VALUES (" + other
                + ", 'retried_by_operator') RETURNING id").get(0).get("id")).longValue();
        // a producer in another language copies a running row, reservations included (V13_8)
        long forged = ((Number) db.rows("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts, started_at,"
                + " lease_expires_at, claim_event_id) VALUES ('noop', 'running', 'node-x', 1, 1, now(),"
                + " now() - interval '1 hour', " + stored + ") RETURNING id").get(0).get("id")).longValue();

        // the reaper's requeue (a unique violation in every sweep before V13_8) goes through
        store.requeueStale(Duration.ofMinutes(1), Duration.ofMinutes(1), 3, 100);
        assertThat(db.count("tasks WHERE id = " + forged + " AND status = 'pending' AND claim_event_id IS NULL")).isOne();
        assertThat(trail(forged)).containsExactly("claimed@node-x/1", "requeued@node-x/1");
        assertThat(trail(other)).containsExactly("retried_by_operator@null/null");
    }
}

package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * A completion whose commit the node did not hear about (connection broke after COMMIT) is written
 * again by the completer: the second write must count as accepted, not as a refused zombie write; a
 * failure as much as a success (issue 11, item 6). And an outcome is matched by (task, token): a stale
 * outcome beside the current one of the same task is refused, not counted as accepted.
 */
class CompletionRetryTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log RESTART IDENTITY");
    }

    @Test
    void repeatingAnAcceptedCompletionWithTheSameTokenIsAcceptedAndWritesNoEvent() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask t = store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(5)), 1, 3)).get(0);
        var success = new Outcome.Success(t.id(), t.leaseToken(), "{\"n\": 1}");

        assertThat(store.completeIfOwned("node-a", List.of(success))).containsEntry(t.id(), TaskStatus.SUCCEEDED);
        assertThat(store.completeIfOwned("node-a", List.of(success))).containsEntry(t.id(), TaskStatus.SUCCEEDED);

        assertThat(db.count("task_events WHERE event = 'succeeded'")).isEqualTo(1);
        assertThat(db.count("task_events WHERE event = 'completion_refused'")).isZero();
    }

    @Test
    void anotherOwnersCompletionOfAFinishedTaskIsStillRefused() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask t = store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(5)), 1, 3)).get(0);
        store.completeIfOwned("node-a", List.of(new Outcome.Success(t.id(), t.leaseToken(), null)));

        var zombie = new Outcome.Success(t.id(), t.leaseToken(), null);
        assertThat(store.completeIfOwned("node-b", List.of(zombie))).isEmpty();
        assertThat(db.count("task_events WHERE event = 'completion_refused' AND owner_id = 'node-b' AND task_id = " + t.id()))
                .isEqualTo(1);
    }

    /**
     * The lease of {@code t} expires and another node's reaper requeues it, so node-a's next claim takes
     * the task again under a new token (a node no longer takes over its own expired lease, issue 11 item 5).
     */
    private void claimedAgainAfterExpiry(TaskStore store, ClaimedTask t) {
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = " + t.id());
        assertThat(store.requeueStale(Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 100)).get().asList().hasSize(1);
    }

    private ClaimedTask claimOne(TaskStore store) {
        return store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(5)), 1, 3)).get(0);
    }

    @Test
    void repeatingAnAcceptedRetryableFailureWithTheSameTokenIsAcceptedAndWritesNoEvent() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask t = claimOne(store);
        var failure = new Outcome.Failure(t.id(), t.leaseToken(), "boom", false, Duration.ofMinutes(1));

        assertThat(store.completeIfOwned("node-a", List.of(failure))).containsEntry(t.id(), TaskStatus.PENDING);
        assertThat(store.completeIfOwned("node-a", List.of(failure))).containsEntry(t.id(), TaskStatus.PENDING);

        assertThat(db.count("task_events WHERE event = 'retry_scheduled' AND task_id = " + t.id())).isEqualTo(1);
        assertThat(db.count("task_events WHERE event = 'completion_refused' AND task_id = " + t.id())).isZero();
    }

    @Test
    void repeatingAnAcceptedPermanentFailureWithTheSameTokenIsAcceptedAndWritesNoEvent() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask t = claimOne(store);
        var failure = new Outcome.Failure(t.id(), t.leaseToken(), "boom", true, Duration.ZERO);

        assertThat(store.completeIfOwned("node-a", List.of(failure))).containsEntry(t.id(), TaskStatus.FAILED);
        assertThat(store.completeIfOwned("node-a", List.of(failure))).containsEntry(t.id(), TaskStatus.FAILED);

        assertThat(db.count("task_events WHERE event = 'failed' AND task_id = " + t.id())).isEqualTo(1);
        assertThat(db.count("task_events WHERE event = 'completion_refused' AND task_id = " + t.id())).isZero();
    }

    @Test
    void anotherOwnersFailureOfAFailedTaskIsStillRefused() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask t = claimOne(store);
        store.completeIfOwned("node-a", List.of(new Outcome.Failure(t.id(), t.leaseToken(), "boom", true, Duration.ZERO)));

        var zombie = new Outcome.Failure(t.id(), t.leaseToken(), "boom", true, Duration.ZERO);
        assertThat(store.completeIfOwned("node-b", List.of(zombie))).isEmpty();
        assertThat(db.count("task_events WHERE event = 'completion_refused' AND owner_id = 'node-b' AND task_id = " + t.id()))
                .isEqualTo(1);
    }

    @Test
    void aStaleOutcomeBesideTheCurrentOneOfTheSameTaskInOneBatchIsRefused() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask first = claimOne(store);
        claimedAgainAfterExpiry(store, first);
        ClaimedTask again = claimOne(store);
        assertThat(again.id()).isEqualTo(first.id());
        assertThat(again.leaseToken()).isEqualTo(first.leaseToken() + 1);

        var accepted = store.writeOutcomes("node-a", List.of(new Outcome.Success(first.id(), first.leaseToken(), null),
                new Outcome.Success(again.id(), again.leaseToken(), null)));

        assertThat(accepted).containsExactly(new TaskStore.Accepted(again.id(), again.leaseToken(), TaskStatus.SUCCEEDED));
        assertThat(db.count("task_events WHERE event = 'succeeded' AND task_id = " + first.id())).isEqualTo(1);
        assertThat(db.count("task_events WHERE event = 'completion_refused' AND lease_token = " + first.leaseToken()
                + " AND task_id = " + first.id())).isEqualTo(1);
    }

    @Test
    void aStaleFailureBesideTheCurrentOneOfTheSameTaskInOneBatchIsRefused() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        ClaimedTask first = claimOne(store);
        claimedAgainAfterExpiry(store, first);
        ClaimedTask again = claimOne(store);

        var accepted = store.writeOutcomes("node-a", List.of(
                new Outcome.Failure(first.id(), first.leaseToken(), "stale", true, Duration.ZERO),
                new Outcome.Failure(again.id(), again.leaseToken(), "current", true, Duration.ZERO)));

        assertThat(accepted).containsExactly(new TaskStore.Accepted(again.id(), again.leaseToken(), TaskStatus.FAILED));
        assertThat(db.rows("SELECT last_error FROM tasks WHERE id = " + first.id()).get(0)).containsEntry("last_error", "current");
        assertThat(db.count("task_events WHERE event = 'completion_refused' AND lease_token = " + first.leaseToken()
                + " AND task_id = " + first.id())).isEqualTo(1);
    }
}

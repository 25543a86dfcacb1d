package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * A completion whose commit the node did not hear about (connection broke after COMMIT) is written
 * again by the completer: the second write must count as accepted, not as a refused zombie write.
 */
class CompletionRetryTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

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
}

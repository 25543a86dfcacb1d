package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.PreviousAttempt;
import pgdispatch.api.PreviousAttempt.Ending;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 14, hand-off: what {@code TaskContext.previousAttempt()} tells the next attempt, for each way an
 * attempt ends, from the real transitions' events (TaskStore.previousAttempt mapped by PreviousAttempt.of).
 */
class HandOffTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Duration LEASE = Duration.ofMinutes(10);
    private final TaskStore store = new TaskStore(db.database());
    private long id;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        id = store.enqueue(new NewTask("default", "work", "{}", 0, null, 5, null));
    }

    private ClaimedTask claim(String owner) {
        List<ClaimedTask> got = store.claimDue(new ClaimRequest(owner, List.of("default"), Map.of("work", LEASE), 1, 3));
        assertThat(got).as("claim by " + owner).hasSize(1);
        return got.get(0);
    }

    /** Node a claims, saves a checkpoint and a message; returns its claim. */
    private ClaimedTask firstAttemptWithCheckpoint() {
        ClaimedTask a = claim("node-a");
        assertThat(store.heartbeat("node-a", id, a.leaseToken(), LEASE, "{\"page\": 3}", "page 3 of 9")).isTrue();
        return a;
    }

    private PreviousAttempt handOff(ClaimedTask next) {
        return PreviousAttempt.of(store.previousAttempt(id, next.leaseToken()).orElseThrow(), next.progressJson());
    }

    private static void assertCarriesTheCheckpoint(PreviousAttempt p) {
        assertThat(p.owner()).isEqualTo("node-a");
        assertThat(p.attempt()).isEqualTo(1);
        assertThat(p.checkpoint()).hasValueSatisfying(c -> assertThat(c.get("page").asInt()).isEqualTo(3));
        assertThat(p.lastMessage()).isEqualTo("page 3 of 9");
        assertThat(p.lastProgressAt()).isNotNull();
        assertThat(p.startedAt()).isNotNull();
    }

    @Test
    void firstAttemptHasNoPreviousOne() {
        assertThat(store.previousAttempt(id, claim("node-a").leaseToken())).isEmpty();
    }

    @Test
    void retryAfterAFailureCarriesTheErrorAndTheCheckpoint() {
        ClaimedTask a = firstAttemptWithCheckpoint();
        store.completeIfOwned("node-a", List.of(new Outcome.Failure(id, a.leaseToken(), "java.io.IOException: reset", false,
                Duration.ZERO)));

        PreviousAttempt p = handOff(claim("node-b"));

        assertThat(p.ending()).isEqualTo(Ending.FAILED);
        assertThat(p.reason()).isEqualTo("java.io.IOException: reset");
        assertThat(p.endedAt()).isNotNull();
        assertThat(p.ran()).isPositive();
        assertCarriesTheCheckpoint(p);
    }

    @Test
    void takeOverOfAnExpiredLeaseSaysSo() {
        firstAttemptWithCheckpoint();
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = " + id);

        ClaimedTask b = claim("node-b");
        assertThat(b.tookOver()).isTrue();
        PreviousAttempt p = handOff(b);

        assertThat(p.ending()).isEqualTo(Ending.LEASE_EXPIRED);
        assertThat(p.reason()).isEqualTo("lease expired; taken over by node-b");
        assertCarriesTheCheckpoint(p);
    }

    @Test
    void deadNodesTaskRequeuedByTheReaperSaysTheNodeDied() {
        TaskRows.node(db, "node-a", Duration.ZERO);
        firstAttemptWithCheckpoint();
        db.exec("UPDATE dispatcher_nodes SET last_seen_at = now() - interval '5 minutes' WHERE node_id = 'node-a'");
        assertThat(store.requeueStale(Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 10).orElseThrow()).hasSize(1);

        PreviousAttempt p = handOff(claim("node-b"));

        assertThat(p.ending()).isEqualTo(Ending.NODE_DIED);
        assertThat(p.reason()).startsWith("owner node node-a not seen since");
        assertCarriesTheCheckpoint(p);
    }

    @Test
    void restartedNodesTaskSaysTheNodeDied() {
        firstAttemptWithCheckpoint();
        store.recoverOwnedBy("node-a", 3, 10);

        PreviousAttempt p = handOff(claim("node-a"));

        assertThat(p.ending()).isEqualTo(Ending.NODE_DIED);
        assertThat(p.reason()).contains("restarted");
        assertCarriesTheCheckpoint(p);
    }

    @Test
    void stuckAttemptCarriesItsSilence() {
        UUID incarnation = TaskRows.node(db, "node-a", Duration.ZERO);
        ClaimedTask a = firstAttemptWithCheckpoint();
        db.exec("UPDATE tasks SET last_heartbeat_at = now() - interval '20 minutes' WHERE id = " + id);
        store.renewHeld("node-a", incarnation.toString(), List.of(new HeldLease(id, a.leaseToken(), LEASE, false,
                Duration.ZERO, "work")), new StuckRules(Map.of("work", new StuckRules.Rule(5, Duration.ofSeconds(60),
                false, false)), Duration.ofMinutes(15), 3));

        PreviousAttempt p = handOff(claim("node-b"));

        assertThat(p.ending()).isEqualTo(Ending.STUCK);
        assertThat(p.reason()).startsWith("no progress reported for 1200.").contains("bound 900.0 s");
        assertCarriesTheCheckpoint(p);
    }

    @Test
    void releasedAtShutdownSaysSo() {
        ClaimedTask a = firstAttemptWithCheckpoint();
        store.releaseHeld("node-a", List.of(new HeldLease(id, a.leaseToken(), LEASE)), "shutdown: drain time over");

        PreviousAttempt p = handOff(claim("node-b"));

        assertThat(p.ending()).isEqualTo(Ending.RELEASED);
        assertThat(p.reason()).isEqualTo("released by node-a: shutdown: drain time over");
        assertThat(p.checkpoint()).isPresent();
    }

    @Test
    void cancelledThenRetriedByAnOperatorSaysCancelled() {
        firstAttemptWithCheckpoint();
        assertThat(store.cancel(id, "wrong customer")).isTrue();
        assertThat(store.retry(id)).isTrue();

        PreviousAttempt p = handOff(claim("node-b"));

        assertThat(p.ending()).isEqualTo(Ending.CANCELLED);
        assertThat(p.reason()).isEqualTo("wrong customer");
        assertThat(p.owner()).isEqualTo("node-a");
    }

    @Test
    void reclaimAfterALostClaimResponseIsTheSameAttempt() {
        ClaimedTask a = firstAttemptWithCheckpoint();
        store.completeIfOwned("node-a", List.of(new Outcome.Failure(id, a.leaseToken(), "boom", false, Duration.ZERO)));
        ClaimedTask b = claim("node-b");
        List<ClaimedTask> again = store.reclaimOwned("node-b", java.util.Set.of(), Map.of("work", LEASE));
        assertThat(again).hasSize(1);

        PreviousAttempt p = PreviousAttempt.of(store.previousAttempt(id, again.get(0).leaseToken()).orElseThrow(),
                b.progressJson());

        assertThat(p.owner()).isEqualTo("node-a");
        assertThat(p.ending()).isEqualTo(Ending.FAILED);
    }
}

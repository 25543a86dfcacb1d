package pgdispatch.chaos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.Mutant;
import pgdispatch.store.Outcome;
import pgdispatch.store.TaskStatus;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * The mutation check, deterministic (issue 13): for each seeded bug of {@link Mutant}, the history that
 * exposes it, driven step by step through the real {@link TaskStore} (and, for the handler bug, a real
 * {@link Dispatcher}) on real PostgreSQL, then judged by the chaos checker ({@link Invariants}, the
 * same code that judges a chaos run). Time passes by UPDATE (a lease pushed into the past), never by
 * sleeping. With the real code each history must pass the checker; with the scenario's mutant
 * ({@code -Dpgdispatch.mutant=NAME}, read when {@link Mutant} loads) the checker must report the rule
 * named in the scenario. pgdispatch-chaos's pom runs this class once per mutant (a surefire execution
 * each, a JVM each) beside the default execution, so {@code scripts/test} kills every mutant in every
 * run; a chaos run kills them only when its faults happen to produce the history (docs/RELIABILITY.md).
 */
class MutantScenariosTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static final String A = "node-a";
    static final String B = "node-b";
    static final int MAX_REQUEUE = 3;
    static final Duration LEASE = Duration.ofMinutes(10);
    static final Map<String, Duration> LEASES = Map.of("noop", LEASE, "sleep", LEASE, "fail", LEASE);

    private TaskStore store;
    private final Map<Long, Invariants.Expected> expected = new HashMap<>();

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        store = new TaskStore(db.database());
    }

    /**
     * Owner A claims the task (token 1); its lease expires and the reaper's statement requeues it; A claims
     * it again (token 2); then A's completion under token 1 arrives (the old attempt's handler ran on).
     * The fence refuses it; A then completes under token 2.
     */
    @Test
    void completionUnderALeaseItsOwnerHasSinceSuperseded() throws SQLException {
        assumeScenarioOf(Mutant.COMPLETION_IGNORES_TOKEN);
        ClaimedTask first = claimedWithItsLeaseExpired(A);
        assertThat(store.requeueStale(Duration.ofMinutes(15), Duration.ofMinutes(15), MAX_REQUEUE, 100).orElseThrow())
                .as("requeued by the reaper's statement").hasSize(1);
        ClaimedTask second = claim(A);
        assertThat(second.leaseToken()).isEqualTo(first.leaseToken() + 1);

        Map<Long, TaskStatus> stale = succeed(A, first);
        if (Mutant.ACTIVE == Mutant.NONE) assertThat(stale).as("the superseded lease's completion").isEmpty();
        succeed(A, second);

        judge(Mutant.COMPLETION_IGNORES_TOKEN, "double_accepted.accepted_from_superseded_owner");
    }

    /** A claims the task; its lease expires; B's claim takes it over (a requeue, by the budget's rules); B completes. */
    @Test
    void takeOverOfAnExpiredLease() throws SQLException {
        assumeScenarioOf(Mutant.TAKEOVER_NO_REQUEUE);
        claimedWithItsLeaseExpired(A);
        ClaimedTask taken = claim(B);
        assertThat(taken.previousOwner()).isEqualTo(A);
        succeed(B, taken);

        judge(Mutant.TAKEOVER_NO_REQUEUE, "lost.row_differs_from_history");
    }

    /** A task that fails its first attempt of three is retried (attempts left), then succeeds on its second. */
    @Test
    void aFailureWithAttemptsLeftIsRetried() throws SQLException {
        assumeScenarioOf(Mutant.BUDGET_INT_OVERFLOW);
        long id = enqueue("fail", "{\"times\":1}", 3);
        ClaimedTask first = claim(A);
        store.completeIfOwned(A, List.of(new Outcome.Failure(id, first.leaseToken(),
                "fail: attempt 1 fails as asked (times=1)", false, Duration.ZERO)));
        List<ClaimedTask> again = store.claimDue(request(A));
        if (Mutant.ACTIVE == Mutant.NONE) assertThat(again).as("the retry").hasSize(1);
        for (ClaimedTask t : again) {
            store.completeIfOwned(A, List.of(new Outcome.Success(id, t.leaseToken(), "{\"succeeded_on_attempt\":" + t.attempt() + "}")));
        }

        judge(Mutant.BUDGET_INT_OVERFLOW, "wrong_result.failed_with_attempts_left");
    }

    /** Ten tasks claimed and completed in one batch each: the tenth (id 10) is the one the mutant replaces. */
    @Test
    void finishedTasksKeepTheirRowsAndHistories() throws SQLException {
        assumeScenarioOf(Mutant.SUBSTITUTE_FINISHED);
        for (int i = 0; i < 10; i++) enqueue("noop", "{}", 3);
        List<ClaimedTask> all = store.claimDue(request(A));
        assertThat(all).hasSize(10);
        List<Outcome> done = new ArrayList<>();
        for (ClaimedTask t : all) done.add(new Outcome.Success(t.id(), t.leaseToken(), null));
        store.completeIfOwned(A, done);

        judge(Mutant.SUBSTITUTE_FINISHED, "lost.missing_task");
    }

    /** A real node runs a {@code sleep} task: the result must be the handler's, {"slept_ms": 5}. */
    @Test
    void aNodeReportsWhatItsHandlerReturned() throws Exception {
        assumeScenarioOf(Mutant.HANDLER_SKIPPED);
        long id = enqueue("sleep", "{\"ms\":5}", 3);
        DispatcherConfig cfg = db.config().withNode(A, List.of("default"), 1).withSocketTimeout(Duration.ZERO)
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500))
                .withHttpPort(DispatcherConfig.HTTP_OFF);
        try (Dispatcher d = Dispatcher.builder(cfg).build().start()) {
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE id = " + id + " AND status = 'succeeded'") == 1);
        }

        judge(Mutant.HANDLER_SKIPPED, "wrong_result.outcome_differs");
    }

    // ------------------------------------------------------------------ helpers

    /** Each scenario runs with the real code and with its own mutant; another mutant's execution skips it. */
    private static void assumeScenarioOf(Mutant m) {
        assumeTrue(Mutant.ACTIVE == Mutant.NONE || Mutant.ACTIVE == m, "scenario of " + m.label() + ", not of " + Mutant.ACTIVE.label());
    }

    /** The checker's verdict on the database: clean with the real code, the mutant's rule with the mutant. */
    private void judge(Mutant m, String rule) throws SQLException {
        Invariants.Verdict v;
        try (Connection c = db.database().dataSource().getConnection()) {
            v = new Invariants(MAX_REQUEUE, Map.of()).check(c, expected);
        }
        String seen = "rules broken: " + v.byRule() + ", examples: " + v.examples();
        System.out.println("MutantScenariosTest: mutant=" + Mutant.ACTIVE.label() + " scenario=" + m.label() + " rules broken: "
                + v.byRule());
        if (Mutant.ACTIVE == m) {
            assertThat(v.byRule()).as("mutant %s must be killed by %s; %s", m.label(), rule, seen).containsKey(rule);
        } else {
            assertThat(v.ok()).as("the real code passes the checker; %s", seen).isTrue();
        }
    }

    /** A workload-shaped task (payload w/g/i, the checker's key) and its expected outcome: noop, sleep 5 ms, fail once. */
    private long enqueue(String kind, String payload, int maxAttempts) {
        long n = expected.size() + 1;
        String body = payload.substring(0, payload.length() - 1) + (payload.length() > 2 ? "," : "")
                + "\"w\":1,\"g\":1,\"i\":" + n + "}";
        long id = ((Number) db.rows("INSERT INTO tasks (queue, kind, payload, max_attempts) VALUES ('default', '" + kind + "', '"
                + body + "'::jsonb, " + maxAttempts + ") RETURNING id").get(0).get("id")).longValue();
        long sleepMs = kind.equals("sleep") ? 5 : 0;
        int failTimes = kind.equals("fail") ? 1 : 0;
        expected.put(id, new Invariants.Expected(key(n), kind, sleepMs, failTimes, maxAttempts));
        return id;
    }

    private static String key(long n) {
        return "1/1/" + n;
    }

    private ClaimRequest request(String owner) {
        return new ClaimRequest(owner, List.of("default"), LEASES, 10, MAX_REQUEUE);
    }

    private ClaimedTask claim(String owner) {
        List<ClaimedTask> got = store.claimDue(request(owner));
        assertThat(got).as("claimed by " + owner).hasSize(1);
        return got.get(0);
    }

    /** {@code owner}'s success (result null) for the attempt it was given as {@code t}. */
    private Map<Long, TaskStatus> succeed(String owner, ClaimedTask t) {
        return store.completeIfOwned(owner, List.of(new Outcome.Success(t.id(), t.leaseToken(), null)));
    }

    /** A noop task claimed by {@code owner}, its lease then set in the past (time passes by UPDATE). */
    private ClaimedTask claimedWithItsLeaseExpired(String owner) {
        long id = enqueue("noop", "{}", 3);
        ClaimedTask t = claim(owner);
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = " + id);
        return t;
    }
}

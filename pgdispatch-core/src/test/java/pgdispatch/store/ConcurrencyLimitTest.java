package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/** Cluster-wide concurrency limits as the claim enforces them, with claimers racing for the same rows. */
class ConcurrencyLimitTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Map<String, Duration> LEASES = Map.of("work", Duration.ofMinutes(5), "other", Duration.ofMinutes(5));
    private TaskStore store;
    private LimitStore limits;
    private final ExecutorService pool = Executors.newFixedThreadPool(8);

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, concurrency_limits");
        store = new TaskStore(db.database());
        limits = new LimitStore(db.database().dataSource());
    }

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    private void pending(String queue, String kind, int n) {
        db.exec("INSERT INTO tasks (queue, kind) SELECT '" + queue + "', '" + kind + "' FROM generate_series(1, " + n + ")");
    }

    private ClaimRequest request(String owner, int limit, List<String> locked) {
        return new ClaimRequest(owner, List.of("default", "mail"), LEASES, limit, 3, true).withLockedLimits(locked);
    }

    /** Eight claimers released at once, each asking for up to 10 tasks; returns how many each got. */
    private List<Integer> race(List<String> locked) throws Exception {
        CyclicBarrier start = new CyclicBarrier(8);
        List<Future<Integer>> got = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            String owner = "node-" + i;
            got.add(pool.submit(() -> {
                start.await(10, TimeUnit.SECONDS);
                return store.claimDue(request(owner, 10, locked)).size();
            }));
        }
        List<Integer> out = new ArrayList<>();
        for (Future<Integer> f : got) out.add(f.get(30, TimeUnit.SECONDS));
        return out;
    }

    private long running(String kind) {
        return db.count("tasks WHERE status = 'running' AND kind = '" + kind + "'");
    }

    @Test
    void racingClaimersNeverRunMoreThanTheLimitOfAKind() throws Exception {
        pending("default", "work", 100);
        limits.set(LimitStore.Scope.KIND, "work", 3, "test");

        for (int round = 0; round < 5; round++) {
            List<Integer> got = race(List.of("kind:work"));
            assertThat(running("work")).as("round %d, claims %s", round, got).isEqualTo(3);
            // two finish: the next race may start exactly two more
            db.exec("UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id IN"
                    + " (SELECT id FROM tasks WHERE status = 'running' ORDER BY id LIMIT 2)");
        }
        assertThat(db.count("tasks WHERE status = 'succeeded'")).isEqualTo(10);
    }

    @Test
    void aQueueLimitHoldsAcrossKinds() throws Exception {
        pending("mail", "work", 20);
        pending("mail", "other", 20);
        pending("default", "other", 5);
        limits.set(LimitStore.Scope.QUEUE, "mail", 4, "test");

        race(List.of("queue:mail"));

        assertThat(db.count("tasks WHERE status = 'running' AND queue = 'mail'")).isEqualTo(4);
        assertThat(db.count("tasks WHERE status = 'running' AND queue = 'default'")).as("unlimited queue").isEqualTo(5);
    }

    @Test
    void aClaimThatDoesNotHoldALimitsLockTakesNoneOfItsTasks() {
        pending("default", "work", 5);
        pending("default", "other", 5);
        limits.set(LimitStore.Scope.KIND, "work", 10, "test");

        List<ClaimedTask> got = store.claimDue(request("node-a", 100, List.of()));

        assertThat(got).extracting(ClaimedTask::kind).containsOnly("other").hasSize(5);
        assertThat(limits.keysFor(LEASES.keySet(), List.of("default"))).containsExactly("kind:work");
        assertThat(store.claimDue(request("node-a", 100, List.of("kind:work")))).hasSize(5);
    }

    @Test
    void anExpiredLeaseTakenOverSpendsNoRoomAndALimitOfZeroStartsNothing() {
        long expired = TaskRows.runningLeaseExpired(db, "node-dead", Duration.ofMinutes(1));
        pending("default", "work", 3);
        limits.set(LimitStore.Scope.KIND, "work", 2, "test");

        List<ClaimedTask> got = store.claimDue(request("node-a", 10, List.of("kind:work")));

        // running: the expired one (1 of 2); it is running already, so taking it over needs no room,
        // and the one room left admits one pending task
        assertThat(got).extracting(ClaimedTask::id).hasSize(2).contains(expired);
        assertThat(running("work")).isEqualTo(2);
        db.exec("UPDATE tasks SET status = 'succeeded' WHERE status = 'running'");
        limits.set(LimitStore.Scope.KIND, "work", 0, "test");
        assertThat(store.claimDue(request("node-a", 10, List.of("kind:work")))).isEmpty();
        limits.clear(LimitStore.Scope.KIND, "work");
        assertThat(store.claimDue(request("node-a", 10, List.of("kind:work")))).hasSize(2);
    }

    @Test
    void limitsAreListedWithWhatRunsNowAndBadValuesAreRefused() {
        pending("default", "work", 2);
        limits.set(LimitStore.Scope.KIND, "work", 5, "ops:alice");
        store.claimDue(request("node-a", 10, List.of("kind:work")));

        assertThat(limits.list()).singleElement().satisfies(l -> {
            assertThat(l.key()).isEqualTo("kind:work");
            assertThat(l.maxRunning()).isEqualTo(5);
            assertThat(l.running()).isEqualTo(2);
            assertThat(l.changedBy()).isEqualTo("ops:alice");
        });
        assertThatThrownBy(() -> limits.set(LimitStore.Scope.KIND, "work", -1, "t")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("MAX=-1 must be from 0 to 100000 (0: none starts; `limits clear` removes the limit)");
        assertThatThrownBy(() -> limits.set(LimitStore.Scope.QUEUE, "a b", 1, "t")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("queue='a b' must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
    }

    @Test
    void aClaimOfOneKindAndQueueWithoutTakeOverTakesWhatTheLimitAdmits() {
        pending("default", "noop", 100);
        limits.set(LimitStore.Scope.KIND, "noop", 1000, "test");
        ClaimRequest r = new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(10)), 32, 3, false)
                .withLockedLimits(List.of("kind:noop"));

        assertThat(store.claimDue(r)).hasSize(32);
    }

    @Test
    void theLimitedClaimStillWalksTheClaimIndex() {
        db.exec("INSERT INTO tasks (kind) SELECT 'work' FROM generate_series(1, 20000)");
        db.exec("VACUUM ANALYZE tasks");
        limits.set(LimitStore.Scope.KIND, "work", 100, "test");

        String plan = String.join("\n", store.explainClaim(new ClaimRequest("node-a", List.of("default"), LEASES, 500, 3, false)
                .withLockedLimits(List.of("kind:work"))));

        assertThat(plan).contains("Index Scan using tasks_claim_idx on tasks t ").doesNotContain("Seq Scan on tasks t ");
    }
}

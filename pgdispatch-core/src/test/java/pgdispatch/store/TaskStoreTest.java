package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;
import static org.assertj.core.api.Assertions.tuple;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Every transition of {@link TaskStore} against the real schema: for each, the success first, then each
 * refusal (wrong status, owner, token; terminal row) with the stored row compared whole before and after,
 * and the task_events row that was, or was not, written.
 */
class TaskStoreTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static final String QUEUE = TaskRows.QUEUE;
    static final String KIND = TaskRows.KIND;
    static final Duration LEASE = Duration.ofMinutes(10);
    static final Map<String, Duration> LEASES = Map.of(KIND, LEASE);
    static final int MAX_REQUEUE = 3;
    static final Duration STALE = Duration.ofMinutes(15);
    static final Duration NODE_TIMEOUT = Duration.ofSeconds(90);
    static final ObjectMapper JSON = new ObjectMapper();

    TaskStore store;

    @BeforeEach
    void emptyTables() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        store = new TaskStore(db.database().dataSource());
    }

    // ------------------------------------------------------------------ helpers

    static ClaimRequest claim(String owner, int limit) {
        return new ClaimRequest(owner, List.of(QUEUE), LEASES, limit, MAX_REQUEUE);
    }

    static Map<String, Object> row(long id) {
        return TaskRows.row(db, id);
    }

    /** One task_events row, its detail parsed. */
    record Ev(String event, String owner, Long token, Map<String, Object> detail) {}

    static List<Ev> events(long id) {
        return db.rows("SELECT event, owner_id, lease_token, detail::text AS detail FROM task_events WHERE task_id = "
                + id + " ORDER BY id").stream().map(r -> new Ev((String) r.get("event"), (String) r.get("owner_id"),
                (Long) r.get("lease_token"), parse((String) r.get("detail")))).toList();
    }

    static List<String> eventNames(long id) {
        return events(id).stream().map(Ev::event).toList();
    }

    static Ev onlyEvent(long id) {
        List<Ev> all = events(id);
        assertThat(all).as("events of task %d", id).hasSize(1);
        return all.get(0);
    }

    static Map<String, Object> parse(String json) {
        if (json == null) return null;
        try {
            return JSON.readValue(json, new TypeReference<>() {});
        } catch (Exception e) {
            throw new IllegalStateException(json, e);
        }
    }

    /** Seconds from the database's now() until the lease of {@code id} expires. */
    static double leaseSecondsLeft(long id) {
        return (Double) db.rows("SELECT extract(epoch FROM lease_expires_at - now())::float8 AS s FROM tasks WHERE id = "
                + id).get(0).get("s");
    }

    /** Seconds from {@code column} of task {@code id} until the database's now() (negative: in the future). */
    static double secondsSince(long id, String column) {
        return (Double) db.rows("SELECT extract(epoch FROM now() - " + column + ")::float8 AS s FROM tasks WHERE id = "
                + id).get(0).get("s");
    }

    static long claimOne(String owner) {
        List<ClaimedTask> got = new TaskStore(db.database().dataSource()).claimDue(claim(owner, 1));
        assertThat(got).as("claim by %s", owner).hasSize(1);
        return got.get(0).id();
    }

    /** A new pending task claimed by {@code owner}: running under lease token 1. */
    static long claimedBy(String owner) {
        long id = TaskRows.pending(db);
        assertThat(claimOne(owner)).isEqualTo(id);
        return id;
    }

    // ------------------------------------------------------------------ enqueue

    @Nested
    class Enqueue {
        @Test
        void insertsAPendingTaskDueNowWithoutAnEvent() {
            long id = store.enqueue(new NewTask(QUEUE, KIND, "{\"to\": \"a@example.org\"}", 5, null, 4, null));

            Map<String, Object> r = row(id);
            assertThat(r).containsEntry("status", "pending").containsEntry("queue", QUEUE).containsEntry("kind", KIND)
                    .containsEntry("priority", 5).containsEntry("max_attempts", 4).containsEntry("attempts", 0)
                    .containsEntry("lease_token", 0L).containsEntry("owner_id", null).containsEntry("idempotency_key", null);
            assertThat(r.get("payload")).hasToString("{\"to\": \"a@example.org\"}");
            assertThat(secondsSince(id, "run_at")).isBetween(0.0, 60.0);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void idempotencyKeyReturnsTheFirstIdAndLeavesItsRowUnchanged() {
            long first = store.enqueue(new NewTask(QUEUE, KIND, "{\"v\": 1}", 0, null, 5, "order-42"));
            Map<String, Object> before = row(first);

            // the same kind, queue and payload: a retried request (its other settings do not matter, the first wins;
            // other content is refused: IdempotencyTest)
            long second = store.enqueue(new NewTask(QUEUE, KIND, "{\"v\": 1}", 9, null, 1, "order-42"));

            assertThat(second).isEqualTo(first);
            assertThat(row(first)).isEqualTo(before);
            assertThat(db.count("tasks")).isOne();
        }

        @Test
        void idempotencyKeyStillReturnsTheFirstIdAfterItFinished() {
            long first = store.enqueue(new NewTask(QUEUE, KIND, "{}", 0, null, 5, "once"));
            store.cancel(first, "not needed");

            assertThat(store.enqueue(new NewTask(QUEUE, KIND, "{}", 0, null, 5, "once"))).isEqualTo(first);
            assertThat(row(first)).containsEntry("status", "cancelled");
        }

        @Test
        void enqueueInTheCallersTransactionRolledBackLeavesNothing() throws SQLException {
            long id;
            try (Connection c = db.database().dataSource().getConnection()) {
                c.setAutoCommit(false);
                id = store.enqueue(c, new NewTask(QUEUE, KIND, "{}", 0, null, 5, "tx-key"));
                try (Statement st = c.createStatement(); var rs = st.executeQuery("SELECT count(*) FROM tasks WHERE id = " + id)) {
                    rs.next();
                    assertThat(rs.getLong(1)).as("visible inside the transaction").isOne();
                }
                c.rollback();
                c.setAutoCommit(true);
            }

            assertThat(db.count("tasks")).isZero();
            long again = store.enqueue(new NewTask(QUEUE, KIND, "{}", 0, null, 5, "tx-key"));
            assertThat(again).as("the key is free again").isNotEqualTo(id);
        }

        @Test
        void enqueueInTheCallersTransactionCommitsWithIt() throws SQLException {
            long id;
            try (Connection c = db.database().dataSource().getConnection()) {
                c.setAutoCommit(false);
                id = store.enqueue(c, new NewTask(QUEUE, KIND, "{}", 0, null, 5, null));
                assertThat(db.count("tasks")).as("invisible before commit").isZero();
                c.commit();
                c.setAutoCommit(true);
            }

            assertThat(row(id)).containsEntry("status", "pending");
        }

        @Test
        void enqueueManyInsertsEveryPayloadInOneStatement() {
            List<Long> ids = store.enqueueMany(QUEUE, KIND, List.of("{\"i\": 1}", "{\"i\": 2}", "{\"i\": 3}"), 2, 7);

            assertThat(ids).hasSize(3);
            assertThat(db.rows("SELECT id, payload->>'i' AS i, priority, max_attempts, status FROM tasks ORDER BY id"))
                    .extracting(r -> r.get("id"), r -> r.get("i"), r -> r.get("priority"), r -> r.get("max_attempts"), r -> r.get("status"))
                    .containsExactly(tuple(ids.get(0), "1", 2, 7, "pending"), tuple(ids.get(1), "2", 2, 7, "pending"),
                            tuple(ids.get(2), "3", 2, 7, "pending"));
        }
    }

    // ------------------------------------------------------------------ claim

    @Nested
    class ClaimDue {
        @Test
        void claimsADuePendingTaskUnderANewLeaseToken() {
            long id = TaskRows.pending(db);

            List<ClaimedTask> got = store.claimDue(claim("node-a", 10));

            assertThat(got).singleElement().satisfies(t -> {
                assertThat(t.id()).isEqualTo(id);
                assertThat(t.queue()).isEqualTo(QUEUE);
                assertThat(t.kind()).isEqualTo(KIND);
                assertThat(parse(t.payloadJson())).isEqualTo(Map.of("n", 1));
                assertThat(t.attempt()).isEqualTo(1);
                assertThat(t.leaseToken()).isEqualTo(1);
                assertThat(t.lease()).isEqualTo(LEASE);
                assertThat(t.requeueCount()).isZero();
                assertThat(t.tookOver()).isFalse();
            });
            assertThat(row(id)).containsEntry("status", "running").containsEntry("owner_id", "node-a")
                    .containsEntry("lease_token", 1L).containsEntry("attempts", 1).containsEntry("requeue_count", 0);
            assertThat(leaseSecondsLeft(id)).isCloseTo(600, within(10.0));
            assertThat(secondsSince(id, "last_heartbeat_at")).isBetween(0.0, 10.0);
            assertThat(secondsSince(id, "started_at")).isBetween(0.0, 10.0);
            assertThat(onlyEvent(id)).isEqualTo(new Ev("claimed", "node-a", 1L, Map.of("attempt", 1)));
        }

        @Test
        void claimsByPriorityLowerFirstThenByRunAt() {
            long lowPriority = TaskRows.pending(db);
            TaskRows.update(db, lowPriority, "priority = 5, run_at = now() - interval '10 minutes'");
            long later = TaskRows.pending(db);
            TaskRows.update(db, later, "priority = 0, run_at = now() - interval '1 minute'");
            long earlier = TaskRows.pending(db);
            TaskRows.update(db, earlier, "priority = 0, run_at = now() - interval '2 minutes'");
            long urgent = TaskRows.pending(db);
            TaskRows.update(db, urgent, "priority = -3, run_at = now() - interval '1 second'");

            List<Long> order = new ArrayList<>();
            for (int i = 0; i < 4; i++) order.add(claimOne("node-a"));

            assertThat(order).containsExactly(urgent, earlier, later, lowPriority);
        }

        @Test
        void skipsTasksNotYetDue() {
            long future = TaskRows.pending(db);
            TaskRows.update(db, future, "run_at = now() + interval '1 minute'");
            Map<String, Object> before = row(future);

            assertThat(store.claimDue(claim("node-a", 10))).isEmpty();
            assertThat(row(future)).isEqualTo(before);
            assertThat(events(future)).isEmpty();
        }

        @Test
        void skipsOtherQueues() {
            long elsewhere = TaskRows.pending(db, "reports", KIND);
            Map<String, Object> before = row(elsewhere);

            assertThat(store.claimDue(claim("node-a", 10))).isEmpty();
            assertThat(row(elsewhere)).isEqualTo(before);
        }

        @Test
        void skipsKindsItHasNoLeaseFor() {
            long unknownKind = TaskRows.pending(db, QUEUE, "resize-image");
            long known = TaskRows.pending(db);
            Map<String, Object> before = row(unknownKind);

            assertThat(store.claimDue(claim("node-a", 10))).extracting(ClaimedTask::id).containsExactly(known);
            assertThat(row(unknownKind)).isEqualTo(before);
            assertThat(events(unknownKind)).isEmpty();
        }

        @Test
        void claimsFromEveryQueueAskedUpToTheLimit() {
            long a1 = TaskRows.pending(db, "a", KIND);
            long a2 = TaskRows.pending(db, "a", KIND);
            long b1 = TaskRows.pending(db, "b", KIND);
            long b2 = TaskRows.pending(db, "b", KIND);

            List<ClaimedTask> three = store.claimDue(new ClaimRequest("node-a", List.of("a", "b"), LEASES, 3, MAX_REQUEUE));
            List<ClaimedTask> rest = store.claimDue(new ClaimRequest("node-a", List.of("a", "b"), LEASES, 3, MAX_REQUEUE));

            assertThat(three).hasSize(3);
            assertThat(rest).hasSize(1);
            assertThat(java.util.stream.Stream.concat(three.stream(), rest.stream()).map(ClaimedTask::id).toList())
                    .containsExactlyInAnyOrder(a1, a2, b1, b2);
        }

        @Test
        void givesEachKindItsOwnLease() {
            long quick = TaskRows.pending(db, QUEUE, "quick");
            long slow = TaskRows.pending(db, QUEUE, "slow");
            Map<String, Duration> leases = Map.of("quick", Duration.ofMinutes(1), "slow", Duration.ofMinutes(30));

            List<ClaimedTask> got = store.claimDue(new ClaimRequest("node-a", List.of(QUEUE), leases, 10, MAX_REQUEUE));

            assertThat(got).extracting(ClaimedTask::id, ClaimedTask::lease).containsExactlyInAnyOrder(
                    tuple(quick, Duration.ofMinutes(1)), tuple(slow, Duration.ofMinutes(30)));
            assertThat(leaseSecondsLeft(quick)).isCloseTo(60, within(10.0));
            assertThat(leaseSecondsLeft(slow)).isCloseTo(1800, within(10.0));
        }

        @Test
        void takesOverAnExpiredLeaseWithinTheRequeueBudget() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            TaskRows.update(db, id, "lease_token = 4, requeue_count = 2");

            List<ClaimedTask> got = store.claimDue(claim("node-b", 10));

            assertThat(got).singleElement().satisfies(t -> {
                assertThat(t.id()).isEqualTo(id);
                assertThat(t.previousOwner()).isEqualTo("node-a");
                assertThat(t.tookOver()).isTrue();
                assertThat(t.leaseToken()).isEqualTo(5);
                assertThat(t.requeueCount()).isEqualTo(3);
                assertThat(t.attempt()).isEqualTo(2);
            });
            assertThat(row(id)).containsEntry("status", "running").containsEntry("owner_id", "node-b")
                    .containsEntry("lease_token", 5L).containsEntry("requeue_count", 3).containsEntry("attempts", 2);
            assertThat(leaseSecondsLeft(id)).isCloseTo(600, within(10.0));
            assertThat(onlyEvent(id)).isEqualTo(new Ev("claimed", "node-b", 5L, Map.of("attempt", 2,
                    "took_over_from", "node-a", "reason", "lease expired", "requeue_count", 3)));
        }

        @Test
        void leavesAnExpiredLeaseAloneOnceTheRequeueBudgetIsSpent() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            TaskRows.update(db, id, "requeue_count = " + MAX_REQUEUE);
            Map<String, Object> before = row(id);

            assertThat(store.claimDue(claim("node-b", 10))).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void neverTakesALiveLease() {
            long id = TaskRows.running(db, "node-a");
            Map<String, Object> before = row(id);

            assertThat(store.claimDue(claim("node-b", 10))).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void leavesLegacyRunningRowsWithoutALeaseToTheReaper() {
            long id = TaskRows.legacyRunning(db, Duration.ofHours(2));
            Map<String, Object> before = row(id);

            assertThat(store.claimDue(claim("node-b", 10))).isEmpty();
            assertThat(row(id)).isEqualTo(before);
        }

        @Test
        void refusesALimitBelowOne() {
            assertThatThrownBy(() -> claim("node-a", 0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("ClaimRequest.limit must be > 0, got 0");
        }
    }

    @Nested
    class ConcurrentClaims {
        static final int ROWS = 2000;
        static final int THREADS = 8;
        static final int CLAIMERS_PER_THREAD = 3;

        @Test
        void everyTaskIsClaimedExactlyOnceByClaimersRacingForIt() throws Exception {
            store.enqueueMany(QUEUE, KIND, java.util.Collections.nCopies(ROWS, "{}"), 0, 5);
            Set<Long> all = new HashSet<>(db.rows("SELECT id FROM tasks").stream()
                    .map(r -> (Long) r.get("id")).toList());
            assertThat(all).hasSize(ROWS);

            CyclicBarrier start = new CyclicBarrier(THREADS);
            AtomicInteger threadNo = new AtomicInteger();
            ExecutorService pool = Executors.newFixedThreadPool(THREADS,
                    r -> new Thread(r, "pgd-test-claimer-" + threadNo.incrementAndGet()));
            List<Future<List<ClaimedTask>>> results = new ArrayList<>();
            try {
                for (int t = 0; t < THREADS; t++) {
                    int thread = t;
                    results.add(pool.submit(() -> {
                        List<TaskStore> claimers = new ArrayList<>();
                        for (int c = 0; c < CLAIMERS_PER_THREAD; c++) claimers.add(new TaskStore(db.database().dataSource()));
                        List<ClaimedTask> mine = new ArrayList<>();
                        start.await(10, TimeUnit.SECONDS);
                        for (int round = 0; ; round++) {
                            int c = round % CLAIMERS_PER_THREAD;
                            List<ClaimedTask> got = claimers.get(c).claimDue(claim("node-" + thread + "-" + c, 10));
                            if (got.isEmpty()) return mine;
                            mine.addAll(got);
                        }
                    }));
                }
                List<ClaimedTask> claimed = new ArrayList<>();
                for (Future<List<ClaimedTask>> f : results) claimed.addAll(f.get(60, TimeUnit.SECONDS));

                assertThat(claimed).extracting(ClaimedTask::id).doesNotHaveDuplicates()
                        .containsExactlyInAnyOrderElementsOf(all);
                assertThat(db.count("tasks WHERE status <> 'running'")).isZero();
                assertThat(db.rows("SELECT task_id FROM task_events WHERE event = 'claimed' GROUP BY task_id"
                        + " HAVING count(*) <> 1")).as("tasks claimed other than once").isEmpty();
                assertThat(db.count("task_events WHERE event = 'claimed'")).isEqualTo(ROWS);
                assertThat(db.count("tasks t JOIN task_events e ON e.task_id = t.id AND e.event = 'claimed'"
                        + " WHERE e.owner_id = t.owner_id AND e.lease_token = t.lease_token")).isEqualTo(ROWS);
                assertThat(db.rows("SELECT count(DISTINCT owner_id) AS owners FROM tasks").get(0).get("owners"))
                        .as("claims spread over several claimers").isNotEqualTo(1L);
            } finally {
                pool.shutdownNow();
                assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).as("claimer threads gone").isTrue();
            }
        }
    }

    // ------------------------------------------------------------------ reclaim

    @Nested
    class ReclaimOwned {
        @Test
        void takesBackItsOwnRunningTasksItDoesNotKnowItHolds() {
            long id = claimedBy("node-a");

            List<ClaimedTask> got = store.reclaimOwned("node-a", Set.of(), LEASES);

            assertThat(got).singleElement().satisfies(t -> {
                assertThat(t.id()).isEqualTo(id);
                assertThat(t.leaseToken()).isEqualTo(2);
                assertThat(t.attempt()).as("no second attempt charged").isEqualTo(1);
                assertThat(t.tookOver()).isFalse();
            });
            assertThat(row(id)).containsEntry("owner_id", "node-a").containsEntry("lease_token", 2L)
                    .containsEntry("attempts", 1).containsEntry("status", "running");
            assertThat(events(id)).extracting(Ev::event, Ev::owner, Ev::token).containsExactly(
                    tuple("claimed", "node-a", 1L), tuple("claimed", "node-a", 2L));
            assertThat(events(id).get(1).detail())
                    .containsEntry("reason", "reclaimed after a lost claim response").containsEntry("attempt", 1);
        }

        @Test
        void leavesTasksItHoldsAlone() {
            long id = claimedBy("node-a");
            Map<String, Object> before = row(id);

            assertThat(store.reclaimOwned("node-a", Set.of(id), LEASES)).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(eventNames(id)).containsExactly("claimed");
        }

        @Test
        void leavesOtherOwnersTasksAlone() {
            long id = TaskRows.running(db, "node-b");
            Map<String, Object> before = row(id);

            assertThat(store.reclaimOwned("node-a", Set.of(), LEASES)).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void leavesKindsWithoutAHandlerAlone() {
            long id = TaskRows.running(db, "node-a");
            TaskRows.update(db, id, "kind = 'resize-image'");
            Map<String, Object> before = row(id);

            assertThat(store.reclaimOwned("node-a", Set.of(), LEASES)).isEmpty();
            assertThat(row(id)).isEqualTo(before);
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void leavesItsTerminalTasksAlone(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            Map<String, Object> before = row(id);

            assertThat(store.reclaimOwned(TaskRows.FORMER_OWNER, Set.of(), LEASES)).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        /**
         * Seed 000: A's claim committed but the response was lost; A retried late, its lease looking
         * expired. The retry must take the task back under a renewed lease and a new token, so that B's
         * claim finds nothing to take over.
         */
        @Test
        void retriedClaimBySameOwnerRenewsLeaseSoAnotherWorkerCannotStealIt() {
            long id = TaskRows.pending(db);
            assertThat(store.claimDue(claim("node-a", 10))).extracting(ClaimedTask::id).containsExactly(id);
            TaskRows.update(db, id, "lease_expires_at = now() - interval '1 second'");

            List<ClaimedTask> retried = store.reclaimOwned("node-a", Set.of(), LEASES);
            List<ClaimedTask> stolen = store.claimDue(claim("node-b", 10));

            assertThat(retried).extracting(ClaimedTask::id, ClaimedTask::leaseToken).containsExactly(tuple(id, 2L));
            assertThat(stolen).isEmpty();
            assertThat(row(id)).containsEntry("owner_id", "node-a").containsEntry("lease_token", 2L)
                    .containsEntry("requeue_count", 0).containsEntry("attempts", 1);
            assertThat(leaseSecondsLeft(id)).isCloseTo(600, within(10.0));
            assertThat(events(id)).extracting(Ev::event, Ev::owner, Ev::token).containsExactly(
                    tuple("claimed", "node-a", 1L), tuple("claimed", "node-a", 2L));
        }
    }

    // ------------------------------------------------------------------ renew

    @Nested
    class RenewHeld {
        @Test
        void renewsEveryHeldLeaseAndHeartbeatsTheNode() {
            UUID incarnation = TaskRows.node(db, "node-a", Duration.ofSeconds(40));
            long a = TaskRows.running(db, "node-a");
            long b = TaskRows.running(db, "node-a");
            db.exec("UPDATE tasks SET lease_expires_at = now() + interval '5 seconds',"
                    + " last_heartbeat_at = now() - interval '1 minute' WHERE id IN (" + a + ", " + b + ")");
            Map<String, Object> beforeA = row(a);

            RenewResult r = store.renewHeld("node-a", incarnation.toString(),
                    List.of(new HeldLease(a, 1, LEASE), new HeldLease(b, 1, Duration.ofMinutes(2))));

            assertThat(r.renewed()).containsExactlyInAnyOrder(a, b);
            assertThat(r.lost()).isEmpty();
            assertThat(r.nodeRegistered()).isTrue();
            assertThat(leaseSecondsLeft(a)).isCloseTo(600, within(10.0));
            assertThat(leaseSecondsLeft(b)).isCloseTo(120, within(10.0));
            assertThat(secondsSince(a, "last_heartbeat_at")).as("a renewal is not progress (issue 14)").isBetween(59.0, 70.0);
            Map<String, Object> afterA = row(a);
            assertThat(afterA).containsEntry("updated_at", beforeA.get("updated_at"))
                    .containsEntry("lease_token", 1L).containsEntry("status", "running");
            assertThat(db.rows("SELECT extract(epoch FROM now() - last_seen_at)::float8 AS s FROM dispatcher_nodes")
                    .get(0).get("s")).asInstanceOf(InstanceOfAssertFactories.DOUBLE).isLessThan(10.0);
            assertThat(events(a)).isEmpty();
            assertThat(events(b)).isEmpty();
        }

        @Test
        void reportsACancelledTaskAsLostAndRecordsLeaseLost() {
            long id = claimedBy("node-a");
            store.cancel(id, "operator said so");
            Map<String, Object> before = row(id);

            RenewResult r = store.renewHeld("node-a", UUID.randomUUID().toString(), List.of(new HeldLease(id, 1, LEASE)));

            assertThat(r.renewed()).isEmpty();
            assertThat(r.lost()).containsExactly(Map.entry(id, "cancelled"));
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).last().isEqualTo(new Ev("lease_lost", "node-a", 1L,
                    Map.of("status", "cancelled", "current_owner", "node-a", "current_token", 1)));
        }

        @Test
        void refusesAWrongTokenAndReportsTheTaskLost() {
            long id = TaskRows.running(db, "node-a");
            Map<String, Object> before = row(id);

            RenewResult r = store.renewHeld("node-a", UUID.randomUUID().toString(), List.of(new HeldLease(id, 2, LEASE)));

            assertThat(r.renewed()).isEmpty();
            assertThat(r.lost()).containsExactly(Map.entry(id, "running"));
            assertThat(row(id)).isEqualTo(before);
            assertThat(onlyEvent(id)).isEqualTo(new Ev("lease_lost", "node-a", 2L,
                    Map.of("status", "running", "current_owner", "node-a", "current_token", 1)));
        }

        @Test
        void refusesAnotherOwnersLease() {
            long id = TaskRows.running(db, "node-b");
            Map<String, Object> before = row(id);

            RenewResult r = store.renewHeld("node-a", UUID.randomUUID().toString(), List.of(new HeldLease(id, 1, LEASE)));

            assertThat(r.lost()).containsExactly(Map.entry(id, "running"));
            assertThat(row(id)).isEqualTo(before);
            assertThat(onlyEvent(id).detail()).containsEntry("current_owner", "node-b");
        }

        @Test
        void refusesALeaseTakenOverAfterItExpired() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofSeconds(30));
            assertThat(claimOne("node-b")).isEqualTo(id);
            Map<String, Object> before = row(id);

            RenewResult r = store.renewHeld("node-a", UUID.randomUUID().toString(), List.of(new HeldLease(id, 1, LEASE)));

            assertThat(r.lost()).containsExactly(Map.entry(id, "running"));
            assertThat(row(id)).isEqualTo(before).containsEntry("owner_id", "node-b");
            assertThat(events(id)).last().isEqualTo(new Ev("lease_lost", "node-a", 1L,
                    Map.of("status", "running", "current_owner", "node-b", "current_token", 2)));
        }

        @Test
        void reportsARequeuedTaskAsLostWithStatusPending() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofSeconds(30));
            store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100);

            RenewResult r = store.renewHeld("node-a", UUID.randomUUID().toString(), List.of(new HeldLease(id, 1, LEASE)));

            assertThat(r.lost()).containsExactly(Map.entry(id, "pending"));
            assertThat(row(id)).containsEntry("status", "pending").containsEntry("lease_expires_at", null);
        }

        @Test
        void renewsSomeAndReportsTheOthersLostInOneCall() {
            long kept = TaskRows.running(db, "node-a");
            long cancelled = TaskRows.running(db, "node-a");
            store.cancel(cancelled, null);

            RenewResult r = store.renewHeld("node-a", UUID.randomUUID().toString(),
                    List.of(new HeldLease(kept, 1, LEASE), new HeldLease(cancelled, 1, LEASE)));

            assertThat(r.renewed()).containsExactly(kept);
            assertThat(r.lost()).containsExactly(Map.entry(cancelled, "cancelled"));
        }

        @Test
        void reportsTheNodeRegisteredOnlyForItsOwnIncarnation() {
            UUID incarnation = TaskRows.node(db, "node-a", Duration.ofSeconds(40));
            TaskRows.node(db, "node-b", Duration.ofSeconds(40));
            Object seenBefore = lastSeen("node-a");

            assertThat(store.renewHeld("node-a", UUID.randomUUID().toString(), List.of()).nodeRegistered())
                    .as("another incarnation of node-a").isFalse();
            assertThat(store.renewHeld("node-b", incarnation.toString(), List.of()).nodeRegistered())
                    .as("node-a's incarnation under node-b").isFalse();
            assertThat(store.renewHeld("node-c", incarnation.toString(), List.of()).nodeRegistered())
                    .as("unregistered node").isFalse();
            assertThat(lastSeen("node-a")).isEqualTo(seenBefore);

            assertThat(store.renewHeld("node-a", incarnation.toString(), List.of()).nodeRegistered()).isTrue();
            assertThat(lastSeen("node-a")).isNotEqualTo(seenBefore);
        }

        private Object lastSeen(String node) {
            return db.rows("SELECT last_seen_at FROM dispatcher_nodes WHERE node_id = '" + node + "'").get(0).get("last_seen_at");
        }
    }

    // ------------------------------------------------------------------ heartbeat

    @Nested
    class Heartbeat {
        @Test
        void renewsTheLeaseAndSavesTheCheckpoint() {
            long id = TaskRows.running(db, "node-a");
            TaskRows.update(db, id, "lease_expires_at = now() + interval '5 seconds', last_heartbeat_at = now() - interval '1 minute'");
            Map<String, Object> before = row(id);

            boolean ok = store.heartbeat("node-a", id, 1, Duration.ofMinutes(3), "{\"page\": 7}", "halfway");

            assertThat(ok).isTrue();
            assertThat(leaseSecondsLeft(id)).isCloseTo(180, within(10.0));
            assertThat(secondsSince(id, "last_heartbeat_at")).isBetween(0.0, 10.0);
            Map<String, Object> progress = parse(String.valueOf(row(id).get("progress")));
            assertThat(progress).containsEntry("checkpoint", Map.of("page", 7)).containsEntry("message", "halfway")
                    .containsKey("at");
            assertThat(row(id)).containsEntry("lease_token", 1L).containsEntry("owner_id", "node-a")
                    .containsEntry("updated_at", before.get("updated_at"));
            assertThat(events(id)).isEmpty();
        }

        @Test
        void withoutProgressKeepsTheLastCheckpoint() {
            long id = TaskRows.running(db, "node-a");
            store.heartbeat("node-a", id, 1, LEASE, "{\"page\": 7}", null);
            Object saved = row(id).get("progress");
            TaskRows.update(db, id, "lease_expires_at = now() + interval '5 seconds'");

            assertThat(store.heartbeat("node-a", id, 1, LEASE, null, null)).isTrue();

            assertThat(row(id).get("progress")).isEqualTo(saved);
            assertThat(leaseSecondsLeft(id)).isCloseTo(600, within(10.0));
        }

        @Test
        void withAMessageAloneKeepsTheLastCheckpointAndSavesTheMessage() {
            long id = TaskRows.running(db, "node-a");
            store.heartbeat("node-a", id, 1, LEASE, "{\"page\": 7}", "started");

            assertThat(store.heartbeat("node-a", id, 1, LEASE, null, "still going")).isTrue();

            Map<String, Object> progress = parse(String.valueOf(row(id).get("progress")));
            assertThat(progress).containsEntry("checkpoint", Map.of("page", 7)).containsEntry("message", "still going");
        }

        @Test
        void refusesAnotherOwner() {
            long id = TaskRows.running(db, "node-b");
            Map<String, Object> before = row(id);

            assertThat(store.heartbeat("node-a", id, 1, LEASE, "{\"evil\": true}", "hijack")).isFalse();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void refusesAWrongToken() {
            long id = TaskRows.running(db, "node-a");
            Map<String, Object> before = row(id);

            assertThat(store.heartbeat("node-a", id, 2, LEASE, "{}", null)).isFalse();
            assertThat(store.heartbeat("node-a", id, 0, LEASE, "{}", null)).isFalse();
            assertThat(row(id)).isEqualTo(before);
        }

        @Test
        void refusesTheFormerOwnerAfterATakeOver() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofSeconds(30));
            assertThat(claimOne("node-b")).isEqualTo(id);
            Map<String, Object> before = row(id);

            assertThat(store.heartbeat("node-a", id, 1, LEASE, "{\"stale\": true}", "late")).isFalse();
            assertThat(row(id)).isEqualTo(before);
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void refusesATerminalTask(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            Map<String, Object> before = row(id);

            assertThat(store.heartbeat(TaskRows.FORMER_OWNER, id, 1, LEASE, "{}", "still going?")).isFalse();
            assertThat(row(id)).isEqualTo(before);
        }

        @Test
        void refusesAPendingTask() {
            long id = TaskRows.pending(db);
            Map<String, Object> before = row(id);

            assertThat(store.heartbeat("node-a", id, 0, LEASE, null, null)).isFalse();
            assertThat(row(id)).isEqualTo(before);
        }
    }

    // ------------------------------------------------------------------ complete

    @Nested
    class CompleteIfOwned {
        @Test
        void successStoresTheResultAndFinishesTheTask() {
            long id = claimedBy("node-a");

            Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a",
                    List.of(new Outcome.Success(id, 1, "{\"sent\": 3}")));

            assertThat(accepted).containsExactly(Map.entry(id, TaskStatus.SUCCEEDED));
            Map<String, Object> r = row(id);
            assertThat(r).containsEntry("status", "succeeded").containsEntry("owner_id", "node-a")
                    .containsEntry("lease_token", 1L).containsEntry("lease_expires_at", null);
            assertThat(parse(String.valueOf(r.get("result")))).isEqualTo(Map.of("sent", 3));
            assertThat(secondsSince(id, "finished_at")).isBetween(0.0, 10.0);
            assertThat(events(id)).extracting(Ev::event, Ev::owner, Ev::token)
                    .containsExactly(tuple("claimed", "node-a", 1L), tuple("succeeded", "node-a", 1L));
        }

        @Test
        void failureWithAttemptsLeftIsRetriedAfterItsDelay() {
            long id = claimedBy("node-a");

            Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a",
                    List.of(new Outcome.Failure(id, 1, "timeout talking to smtp", false, Duration.ofSeconds(30))));

            assertThat(accepted).containsExactly(Map.entry(id, TaskStatus.PENDING));
            assertThat(row(id)).containsEntry("status", "pending").containsEntry("owner_id", null)
                    .containsEntry("lease_expires_at", null).containsEntry("finished_at", null)
                    .containsEntry("last_error", "timeout talking to smtp").containsEntry("attempts", 1);
            assertThat(secondsSince(id, "run_at")).isCloseTo(-30, within(10.0));
            Ev ev = events(id).get(1);
            assertThat(ev.event()).isEqualTo("retry_scheduled");
            assertThat(ev.detail()).containsEntry("error", "timeout talking to smtp").containsEntry("attempt", 1)
                    .containsEntry("max_attempts", 5).containsEntry("permanent", false)
                    .hasEntrySatisfying("next_run_at", v -> assertThat(v).isNotNull());
        }

        @Test
        void failureOfTheLastAttemptFailsTheTask() {
            long id = TaskRows.pending(db);
            TaskRows.update(db, id, "max_attempts = 1");
            claimOne("node-a");

            Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a",
                    List.of(new Outcome.Failure(id, 1, "boom", false, Duration.ofSeconds(30))));

            assertThat(accepted).containsExactly(Map.entry(id, TaskStatus.FAILED));
            assertThat(row(id)).containsEntry("status", "failed").containsEntry("owner_id", "node-a")
                    .containsEntry("last_error", "boom");
            assertThat(secondsSince(id, "finished_at")).isBetween(0.0, 10.0);
            Ev ev = events(id).get(1);
            assertThat(ev.event()).isEqualTo("failed");
            assertThat(ev.detail()).containsEntry("attempt", 1).containsEntry("max_attempts", 1)
                    .containsEntry("next_run_at", null);
        }

        @Test
        void permanentFailureFailsAtOnceWithAttemptsLeft() {
            long id = claimedBy("node-a");

            Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a",
                    List.of(new Outcome.Failure(id, 1, "invalid address", true, Duration.ZERO)));

            assertThat(accepted).containsExactly(Map.entry(id, TaskStatus.FAILED));
            assertThat(row(id)).containsEntry("status", "failed").containsEntry("attempts", 1);
            assertThat(events(id).get(1).detail()).containsEntry("permanent", true);
        }

        @Test
        void keepsAtMostTheBoundedErrorText() {
            long id = claimedBy("node-a");

            store.completeIfOwned("node-a", List.of(new Outcome.Failure(id, 1, "x".repeat(10_000), false, Duration.ZERO)));

            assertThat((String) row(id).get("last_error")).hasSize(TaskStore.MAX_ERROR_CHARS).endsWith("…");
        }

        @Test
        void acceptsTheOwnedOutcomesOfABatchAndRefusesTheRest() {
            long ok = claimedBy("node-a");
            long failed = claimedBy("node-a");
            long stolen = TaskRows.running(db, "node-b");

            Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a", List.of(
                    new Outcome.Success(ok, 1, null),
                    new Outcome.Failure(failed, 1, "later", false, Duration.ofMinutes(1)),
                    new Outcome.Success(stolen, 1, null)));

            assertThat(accepted).containsOnly(Map.entry(ok, TaskStatus.SUCCEEDED), Map.entry(failed, TaskStatus.PENDING));
            assertThat(eventNames(stolen)).containsExactly("completion_refused");
            assertThat(row(stolen)).containsEntry("status", "running").containsEntry("owner_id", "node-b");
        }

        @Test
        void refusesAnotherOwnersCompletionAndRecordsIt() {
            long id = TaskRows.running(db, "node-b");
            Map<String, Object> before = row(id);

            assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Success(id, 1, "{}")))).isEmpty();

            assertThat(row(id)).isEqualTo(before);
            assertThat(onlyEvent(id)).isEqualTo(new Ev("completion_refused", "node-a", 1L, Map.of("outcome", "succeeded",
                    "status", "running", "current_owner", "node-b", "current_token", 1)));
        }

        @Test
        void refusesAWrongTokenAndRecordsIt() {
            long id = TaskRows.running(db, "node-a");
            Map<String, Object> before = row(id);

            assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Success(id, 7, "{}")))).isEmpty();

            assertThat(row(id)).isEqualTo(before);
            assertThat(onlyEvent(id)).extracting(Ev::event, Ev::token).containsExactly("completion_refused", 7L);
        }

        @Test
        void refusesTheFormerOwnerAfterATakeOver() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofSeconds(30));
            claimOne("node-b");
            Map<String, Object> before = row(id);

            assertThat(store.completeIfOwned("node-a", List.of(
                    new Outcome.Failure(id, 1, "late failure", false, Duration.ZERO)))).isEmpty();

            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).last().isEqualTo(new Ev("completion_refused", "node-a", 1L, Map.of("outcome", "failed",
                    "status", "running", "current_owner", "node-b", "current_token", 2)));
        }

        @Test
        void refusesATaskThatIsNoLongerRunning() {
            long id = claimedBy("node-a");
            store.releaseHeld("node-a", List.of(new HeldLease(id, 1, LEASE)), "draining");
            Map<String, Object> before = row(id);

            assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Success(id, 1, "{}")))).isEmpty();

            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).last().extracting(Ev::event, e -> e.detail().get("status"))
                    .containsExactly("completion_refused", "pending");
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void refusesATerminalTaskWithItsFormerOwnersToken(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            Map<String, Object> before = row(id);

            var success = store.completeIfOwned(TaskRows.FORMER_OWNER, List.of(new Outcome.Success(id, 1, "{}")));
            assertThat(store.completeIfOwned(TaskRows.FORMER_OWNER,
                    List.of(new Outcome.Failure(id, 1, "again", false, Duration.ZERO)))).isEmpty();

            assertThat(row(id)).isEqualTo(before);
            if (status == TaskStatus.SUCCEEDED) {
                // its owner writing the same success again (a retry after a lost COMMIT): acknowledged, nothing written
                assertThat(success).containsExactly(Map.entry(id, TaskStatus.SUCCEEDED));
                assertThat(events(id)).extracting(Ev::event, e -> e.detail().get("outcome"), e -> e.detail().get("status"))
                        .containsExactly(tuple("completion_refused", "failed", status.sql()));
            } else {
                assertThat(success).isEmpty();
                assertThat(events(id)).extracting(Ev::event, e -> e.detail().get("outcome"), e -> e.detail().get("status"))
                        .containsExactly(tuple("completion_refused", "succeeded", status.sql()),
                                tuple("completion_refused", "failed", status.sql()));
            }
        }
    }

    // ------------------------------------------------------------------ release

    @Nested
    class ReleaseHeld {
        @Test
        void handsTheTaskBackDueNowWithTheAttemptGivenBack() {
            long id = TaskRows.pending(db);
            claimOne("node-a");

            Set<Long> released = store.releaseHeld("node-a", List.of(new HeldLease(id, 1, LEASE)), "draining");

            assertThat(released).containsExactly(id);
            assertThat(row(id)).containsEntry("status", "pending").containsEntry("owner_id", null)
                    .containsEntry("lease_expires_at", null).containsEntry("attempts", 0).containsEntry("lease_token", 1L);
            assertThat(secondsSince(id, "run_at")).isBetween(0.0, 10.0);
            assertThat(events(id)).last().isEqualTo(new Ev("released", "node-a", 1L, Map.of("reason", "draining")));
        }

        @Test
        void refusesAWrongToken() {
            long id = TaskRows.running(db, "node-a");
            Map<String, Object> before = row(id);

            assertThat(store.releaseHeld("node-a", List.of(new HeldLease(id, 2, LEASE)), "draining")).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void refusesAnotherOwner() {
            long id = TaskRows.running(db, "node-b");
            Map<String, Object> before = row(id);

            assertThat(store.releaseHeld("node-a", List.of(new HeldLease(id, 1, LEASE)), "draining")).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void refusesATerminalTask(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            Map<String, Object> before = row(id);

            assertThat(store.releaseHeld(TaskRows.FORMER_OWNER, List.of(new HeldLease(id, 1, LEASE)), "draining")).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void releasesNothingForNoLeases() {
            assertThat(store.releaseHeld("node-a", List.of(), "draining")).isEmpty();
        }
    }

    // ------------------------------------------------------------------ reaper

    @Nested
    class PlanAndRequeueStale {
        @Test
        void planListsWhatASweepWouldDoAndChangesNothing() {
            long expired = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            long overBudget = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            TaskRows.update(db, overBudget, "requeue_count = " + MAX_REQUEUE);
            long silent = TaskRows.runningHeartbeatOld(db, "node-a", Duration.ofMinutes(20));
            TaskRows.running(db, "node-a");
            Map<Long, Map<String, Object>> before = TaskRows.allRows(db);

            List<StaleTask> plan = store.planStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100);

            assertThat(plan).extracting(StaleTask::id, StaleTask::owner, StaleTask::leaseToken, StaleTask::action)
                    .containsExactly(tuple(expired, "node-a", 1L, "requeue"), tuple(overBudget, "node-a", 1L, "quarantine"),
                            tuple(silent, "node-a", 1L, "requeue"));
            assertThat(plan).extracting(StaleTask::reason).satisfiesExactly(
                    r -> assertThat(r).startsWith("lease expired at "),
                    r -> assertThat(r).startsWith("lease expired at "),
                    r -> assertThat(r).startsWith("no heartbeat since "));
            assertThat(TaskRows.allRows(db)).isEqualTo(before);
            assertThat(db.count("task_events")).isZero();
        }

        @Test
        void requeuesAnExpiredLease() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            TaskRows.update(db, id, "lease_token = 3, requeue_count = 1");

            List<StaleTask> swept = sweep();

            assertThat(swept).extracting(StaleTask::id, StaleTask::owner, StaleTask::leaseToken, StaleTask::action)
                    .containsExactly(tuple(id, "node-a", 3L, "requeue"));
            assertThat(row(id)).containsEntry("status", "pending").containsEntry("owner_id", null)
                    .containsEntry("requeue_count", 2).containsEntry("lease_expires_at", null)
                    .containsEntry("lease_token", 3L).containsEntry("finished_at", null);
            assertThat(secondsSince(id, "run_at")).isBetween(0.0, 10.0);
            Ev ev = onlyEvent(id);
            assertThat(ev).extracting(Ev::event, Ev::owner, Ev::token).containsExactly("requeued", "node-a", 3L);
            assertThat(ev.detail()).containsEntry("by", "reaper").containsEntry("requeue_count", 2)
                    .containsEntry("reason", swept.get(0).reason());
        }

        @Test
        void quarantinesPastTheRequeueBudgetWithTheReason() {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            TaskRows.update(db, id, "requeue_count = " + MAX_REQUEUE);

            List<StaleTask> swept = sweep();

            assertThat(swept).extracting(StaleTask::action).containsExactly("quarantine");
            Map<String, Object> r = row(id);
            assertThat(r).containsEntry("status", "quarantined").containsEntry("owner_id", "node-a")
                    .containsEntry("requeue_count", MAX_REQUEUE).containsEntry("lease_expires_at", null);
            assertThat((String) r.get("last_error"))
                    .isEqualTo("quarantined: requeue budget 3 exhausted; " + swept.get(0).reason());
            assertThat(secondsSince(id, "finished_at")).isBetween(0.0, 10.0);
            assertThat(onlyEvent(id)).extracting(Ev::event, Ev::owner).containsExactly("quarantined", "node-a");
        }

        @Test
        void requeuesALiveLeaseWhoseHeartbeatIsStale() {
            long silent = TaskRows.runningHeartbeatOld(db, "node-a", Duration.ofMinutes(20));
            long recent = TaskRows.runningHeartbeatOld(db, "node-a", Duration.ofMinutes(5));
            Map<String, Object> recentBefore = row(recent);

            List<StaleTask> swept = sweep();

            assertThat(swept).extracting(StaleTask::id).containsExactly(silent);
            assertThat(swept.get(0).reason()).startsWith("no heartbeat since ");
            assertThat(row(silent)).containsEntry("status", "pending");
            assertThat(row(recent)).isEqualTo(recentBefore);
        }

        @Test
        void requeuesTheTasksOfANodeNotSeenForTheNodeTimeout() {
            TaskRows.node(db, "node-dead", Duration.ofMinutes(5));
            TaskRows.node(db, "node-live", Duration.ofSeconds(10));
            long orphan = TaskRows.running(db, "node-dead");
            long alive = TaskRows.running(db, "node-live");
            long unregistered = TaskRows.running(db, "node-unregistered");
            Map<String, Object> aliveBefore = row(alive);
            Map<String, Object> unregisteredBefore = row(unregistered);

            List<StaleTask> swept = sweep();

            assertThat(swept).extracting(StaleTask::id, StaleTask::action).containsExactly(tuple(orphan, "requeue"));
            // in UTC, whatever this JVM's (and so the session's) time zone
            assertThat(swept.get(0).reason()).matches("owner node node-dead not seen since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z");
            assertThat(row(orphan)).containsEntry("status", "pending").containsEntry("owner_id", null);
            assertThat(onlyEvent(orphan).detail()).containsEntry("reason", swept.get(0).reason());
            assertThat(row(alive)).isEqualTo(aliveBefore);
            assertThat(row(unregistered)).isEqualTo(unregisteredBefore);
        }

        @Test
        void requeuesTheTasksOfAStoppedNode() {
            TaskRows.node(db, "node-stopped", Duration.ofSeconds(5));
            db.exec("UPDATE dispatcher_nodes SET stopped_at = now() WHERE node_id = 'node-stopped'");
            long id = TaskRows.running(db, "node-stopped");

            List<StaleTask> swept = sweep();

            assertThat(swept).extracting(StaleTask::id).containsExactly(id);
            assertThat(swept.get(0).reason()).startsWith("owner node node-stopped stopped at ");
        }

        @Test
        void requeuesALegacyRunningRowByItsUpdatedAt() {
            long old = TaskRows.legacyRunning(db, Duration.ofHours(1));
            long recent = TaskRows.legacyRunning(db, Duration.ofMinutes(1));

            List<StaleTask> swept = sweep();

            assertThat(swept).extracting(StaleTask::id, StaleTask::owner).containsExactly(tuple(old, null));
            assertThat(swept.get(0).reason()).startsWith("no heartbeat since ");
            assertThat(row(recent)).containsEntry("status", "running");
        }

        @Test
        void leavesFreshLeasesAlone() {
            TaskRows.node(db, "node-a", Duration.ofSeconds(5));
            TaskRows.running(db, "node-a");
            TaskRows.running(db, "node-b");
            TaskRows.pending(db);
            Map<Long, Map<String, Object>> before = TaskRows.allRows(db);

            assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100)).contains(List.of());
            assertThat(TaskRows.allRows(db)).isEqualTo(before);
            assertThat(db.count("task_events")).isZero();
        }

        @Test
        void movesAtMostOneBatchPerCall() {
            for (int i = 0; i < 5; i++) TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));

            assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 2)).get().asList().hasSize(2);
            assertThat(db.count("tasks WHERE status = 'running'")).isEqualTo(3);
            assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 2)).get().asList().hasSize(2);
            assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 2)).get().asList().hasSize(1);
            assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 2)).get().asList().isEmpty();
        }

        @Test
        void returnsEmptyWhileAnotherSweepHoldsTheReaperLock() throws SQLException {
            long id = TaskRows.runningLeaseExpired(db, "node-a", Duration.ofMinutes(1));
            Map<String, Object> before = row(id);

            try (Connection other = Database.connect(db.url()); Statement st = other.createStatement()) {
                st.execute("SELECT pg_advisory_lock(" + TaskStore.REAPER_LOCK + ")");

                assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100)).isEmpty();
                assertThat(row(id)).isEqualTo(before);
                assertThat(events(id)).isEmpty();

                st.execute("SELECT pg_advisory_unlock(" + TaskStore.REAPER_LOCK + ")");
            }
            assertThat(store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100)).get().asList().hasSize(1);
        }

        private List<StaleTask> sweep() {
            Optional<List<StaleTask>> r = store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100);
            assertThat(r).as("reaper lock taken").isPresent();
            return r.orElseThrow();
        }
    }

    // ------------------------------------------------------------------ startup recovery

    @Nested
    class RecoverOwnedBy {
        @Test
        void requeuesWhatItsPreviousIncarnationLeftRunningAndQuarantinesPastTheBudget() {
            long mine = TaskRows.running(db, "node-a");
            TaskRows.update(db, mine, "lease_token = 4");
            long spent = TaskRows.running(db, "node-a");
            TaskRows.update(db, spent, "requeue_count = " + MAX_REQUEUE);
            long theirs = TaskRows.running(db, "node-b");
            long waiting = TaskRows.pending(db);
            Map<String, Object> theirsBefore = row(theirs);
            Map<String, Object> waitingBefore = row(waiting);

            int[] n = store.recoverOwnedBy("node-a", MAX_REQUEUE, 100);

            assertThat(n).containsExactly(1, 1);
            assertThat(row(mine)).containsEntry("status", "pending").containsEntry("owner_id", null)
                    .containsEntry("requeue_count", 1).containsEntry("lease_expires_at", null).containsEntry("lease_token", 4L);
            assertThat(onlyEvent(mine)).isEqualTo(new Ev("recovered_on_startup", "node-a", 4L, Map.of(
                    "reason", "left running by a previous incarnation", "requeue_count", 1, "by", "startup_recovery")));
            assertThat(row(spent)).containsEntry("status", "quarantined").containsEntry("last_error",
                    "quarantined: requeue budget 3 exhausted; left running by a previous incarnation of node-a");
            assertThat(onlyEvent(spent).event()).isEqualTo("quarantined");
            assertThat(row(theirs)).isEqualTo(theirsBefore);
            assertThat(row(waiting)).isEqualTo(waitingBefore);
            assertThat(events(theirs)).isEmpty();
        }

        @Test
        void recoversAtMostOneBatch() {
            for (int i = 0; i < 3; i++) TaskRows.running(db, "node-a");

            assertThat(store.recoverOwnedBy("node-a", MAX_REQUEUE, 2)).containsExactly(2, 0);
            assertThat(db.count("tasks WHERE status = 'running'")).isOne();
            assertThat(store.recoverOwnedBy("node-a", MAX_REQUEUE, 2)).containsExactly(1, 0);
        }

        @Test
        void recoversNothingForAnotherOwner() {
            long id = TaskRows.running(db, "node-b");
            Map<String, Object> before = row(id);

            assertThat(store.recoverOwnedBy("node-a", MAX_REQUEUE, 100)).containsExactly(0, 0);
            assertThat(row(id)).isEqualTo(before);
        }
    }

    // ------------------------------------------------------------------ operator actions

    @Nested
    class Cancel {
        @Test
        void cancelsAPendingTask() {
            long id = TaskRows.pending(db);

            assertThat(store.cancel(id, "duplicate order")).isTrue();

            assertThat(row(id)).containsEntry("status", "cancelled").containsEntry("last_error", "duplicate order");
            assertThat(secondsSince(id, "finished_at")).isBetween(0.0, 10.0);
            assertThat(onlyEvent(id)).isEqualTo(new Ev("cancelled", null, 0L,
                    Map.of("reason", "duplicate order", "by", "operator")));
        }

        @Test
        void cancelsARunningTaskWhoseCompletionIsThenRefused() {
            long id = TaskRows.running(db, "node-a");

            assertThat(store.cancel(id, "stop it")).isTrue();

            assertThat(row(id)).containsEntry("status", "cancelled").containsEntry("lease_expires_at", null)
                    .containsEntry("owner_id", "node-a");
            assertThat(onlyEvent(id)).extracting(Ev::event, Ev::owner, Ev::token).containsExactly("cancelled", "node-a", 1L);
            assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Success(id, 1, "{}")))).isEmpty();
            assertThat(row(id)).containsEntry("status", "cancelled");
        }

        @Test
        void keepsTheLastErrorWhenNoReasonIsGiven() {
            long id = TaskRows.pending(db);
            TaskRows.update(db, id, "last_error = 'earlier failure'");

            assertThat(store.cancel(id, null)).isTrue();
            assertThat(row(id)).containsEntry("last_error", "earlier failure");
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void refusesATerminalTask(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            Map<String, Object> before = row(id);

            assertThat(store.cancel(id, "too late")).isFalse();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void refusesAnUnknownTask() {
            assertThat(store.cancel(123_456_789L, "nothing")).isFalse();
            assertThat(db.count("task_events")).isZero();
        }
    }

    @Nested
    class Retry {
        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void startsAFreshAttemptSeriesForATerminalTask(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            TaskRows.update(db, id, "requeue_count = 2");
            Object lastError = row(id).get("last_error");

            assertThat(store.retry(id)).isTrue();

            assertThat(row(id)).containsEntry("status", "pending").containsEntry("attempts", 0)
                    .containsEntry("requeue_count", 0).containsEntry("owner_id", null).containsEntry("lease_expires_at", null)
                    .containsEntry("finished_at", null).containsEntry("started_at", null).containsEntry("result", null)
                    .containsEntry("lease_token", 1L).containsEntry("last_error", lastError);
            assertThat(secondsSince(id, "run_at")).isBetween(0.0, 10.0);
            assertThat(onlyEvent(id)).isEqualTo(new Ev("retried_by_operator", null, 1L, Map.of("by", "operator")));
            assertThat(store.claimDue(claim("node-a", 10))).extracting(ClaimedTask::id, ClaimedTask::leaseToken)
                    .as("claimable again under a newer token").containsExactly(tuple(id, 2L));
        }

        @Test
        void keepsTheOperatorsReasonInTheEvent() {
            long id = TaskRows.terminal(db, TaskStatus.FAILED);

            assertThat(store.retry(id, "upstream fixed")).isTrue();

            assertThat(onlyEvent(id)).isEqualTo(new Ev("retried_by_operator", null, 1L,
                    Map.of("by", "operator", "reason", "upstream fixed")));
        }

        @Test
        void refusesAPendingTask() {
            long id = TaskRows.pending(db);
            Map<String, Object> before = row(id);

            assertThat(store.retry(id)).isFalse();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @Test
        void refusesARunningTask() {
            long id = TaskRows.running(db, "node-a");
            Map<String, Object> before = row(id);

            assertThat(store.retry(id)).isFalse();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }
    }

    @Nested
    class Quarantine {
        @Test
        void setsAPendingTaskAside() {
            long id = TaskRows.pending(db);

            assertThat(store.quarantine(id, "poison payload")).isTrue();

            assertThat(row(id)).containsEntry("status", "quarantined")
                    .containsEntry("last_error", "quarantined by operator: poison payload");
            assertThat(secondsSince(id, "finished_at")).isBetween(0.0, 10.0);
            assertThat(onlyEvent(id)).isEqualTo(new Ev("quarantined", null, 0L,
                    Map.of("reason", "poison payload", "by", "operator")));
        }

        @Test
        void setsARunningTaskAsideAndItsLeaseIsLost() {
            long id = TaskRows.running(db, "node-a");

            assertThat(store.quarantine(id, "runaway")).isTrue();

            assertThat(row(id)).containsEntry("status", "quarantined").containsEntry("lease_expires_at", null);
            assertThat(onlyEvent(id)).extracting(Ev::event, Ev::owner, Ev::token).containsExactly("quarantined", "node-a", 1L);
            assertThat(store.renewHeld("node-a", UUID.randomUUID().toString(), List.of(new HeldLease(id, 1, LEASE))).lost())
                    .containsExactly(Map.entry(id, "quarantined"));
        }

        @Test
        void setsAFailedTaskAside() {
            long id = TaskRows.terminal(db, TaskStatus.FAILED);

            assertThat(store.quarantine(id, "inspect")).isTrue();
            assertThat(row(id)).containsEntry("status", "quarantined");
            assertThat(onlyEvent(id).event()).isEqualTo("quarantined");
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "CANCELLED", "QUARANTINED"})
        void refusesOtherFinishedTasks(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            Map<String, Object> before = row(id);

            assertThat(store.quarantine(id, "why not")).isFalse();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }
    }

    // ------------------------------------------------------------------ prune

    @Nested
    class PruneFinished {
        @Test
        void deletesTasksFinishedBeforeTheRetentionWithTheirEvents() {
            long succeeded = oldTerminal(TaskStatus.SUCCEEDED);
            long failed = oldTerminal(TaskStatus.FAILED);
            long cancelled = oldTerminal(TaskStatus.CANCELLED);
            long quarantined = oldTerminal(TaskStatus.QUARANTINED);
            long recent = TaskRows.terminal(db, TaskStatus.SUCCEEDED);
            long running = TaskRows.running(db, "node-a");
            for (long id : List.of(succeeded, failed, cancelled, quarantined, recent, running)) {
                db.exec("INSERT INTO task_events (task_id, event) VALUES (" + id + ", 'claimed')");
            }
            Map<String, Object> quarantinedBefore = row(quarantined);

            assertThat(store.pruneFinished(Duration.ofDays(1), 100)).isEqualTo(3);

            assertThat(db.rows("SELECT id FROM tasks ORDER BY id")).extracting(r -> r.get("id"))
                    .containsExactly(quarantined, recent, running);
            assertThat(db.rows("SELECT task_id FROM task_events ORDER BY task_id")).extracting(r -> r.get("task_id"))
                    .containsExactly(quarantined, recent, running);
            assertThat(row(quarantined)).isEqualTo(quarantinedBefore);
        }

        @Test
        void deletesAtMostOneBatchPerCall() {
            for (int i = 0; i < 5; i++) oldTerminal(TaskStatus.SUCCEEDED);

            assertThat(store.pruneFinished(Duration.ofDays(1), 2)).isEqualTo(2);
            assertThat(store.pruneFinished(Duration.ofDays(1), 2)).isEqualTo(2);
            assertThat(store.pruneFinished(Duration.ofDays(1), 2)).isEqualTo(1);
            assertThat(store.pruneFinished(Duration.ofDays(1), 2)).isZero();
        }

        private long oldTerminal(TaskStatus status) {
            long id = TaskRows.terminal(db, status);
            TaskRows.update(db, id, "finished_at = now() - interval '2 days'");
            return id;
        }
    }

    // ------------------------------------------------------------------ terminal rows never change

    /**
     * A finished task is immutable to every worker and maintenance statement, even when each of its other
     * columns says stale: its former owner presents the right token, its lease and heartbeat are old, and
     * its owner node is dead.
     */
    @Nested
    class TerminalImmutability {
        long id;
        UUID incarnation;
        Map<String, Object> before;

        void given(TaskStatus status) {
            id = TaskRows.terminal(db, status);
            TaskRows.update(db, id, "lease_expires_at = now() - interval '1 hour',"
                    + " last_heartbeat_at = now() - interval '2 hours', updated_at = now() - interval '2 hours'");
            incarnation = TaskRows.node(db, TaskRows.FORMER_OWNER, Duration.ofHours(1));
            before = row(id);
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void renewHeldLeavesItUnchanged(TaskStatus status) {
            given(status);

            RenewResult r = store.renewHeld(TaskRows.FORMER_OWNER, incarnation.toString(), List.of(new HeldLease(id, 1, LEASE)));

            assertThat(r.renewed()).isEmpty();
            assertThat(r.lost()).containsExactly(Map.entry(id, status.sql()));
            assertThat(row(id)).isEqualTo(before);
            assertThat(eventNames(id)).containsExactly("lease_lost");
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void heartbeatLeavesItUnchanged(TaskStatus status) {
            given(status);

            assertThat(store.heartbeat(TaskRows.FORMER_OWNER, id, 1, LEASE, "{\"p\": 1}", "still here")).isFalse();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void completeIfOwnedLeavesItUnchanged(TaskStatus status) {
            given(status);

            // another owner's late outcomes: refused whatever the terminal state
            assertThat(store.completeIfOwned("node-z", List.of(new Outcome.Success(id, 1, "{}")))).isEmpty();
            assertThat(store.completeIfOwned(TaskRows.FORMER_OWNER,
                    List.of(new Outcome.Failure(id, 1, "late", true, Duration.ZERO)))).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(eventNames(id)).containsExactly("completion_refused", "completion_refused");
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void releaseHeldLeavesItUnchanged(TaskStatus status) {
            given(status);

            assertThat(store.releaseHeld(TaskRows.FORMER_OWNER, List.of(new HeldLease(id, 1, LEASE)), "draining")).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void claimDueLeavesItUnchanged(TaskStatus status) {
            given(status);

            assertThat(store.claimDue(claim("node-b", 10))).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void requeueStaleLeavesItUnchanged(TaskStatus status) {
            given(status);

            assertThat(store.planStale(Duration.ofMinutes(1), NODE_TIMEOUT, MAX_REQUEUE, 100)).isEmpty();
            assertThat(store.requeueStale(Duration.ofMinutes(1), NODE_TIMEOUT, MAX_REQUEUE, 100)).contains(List.of());
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void recoverOwnedByLeavesItUnchanged(TaskStatus status) {
            given(status);

            assertThat(store.recoverOwnedBy(TaskRows.FORMER_OWNER, MAX_REQUEUE, 100)).containsExactly(0, 0);
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }

        @ParameterizedTest
        @EnumSource(value = TaskStatus.class, names = {"SUCCEEDED", "FAILED", "CANCELLED", "QUARANTINED"})
        void cleanupFunctionLeavesItUnchanged(TaskStatus status) {
            given(status);

            assertThat(db.rows("SELECT * FROM pgdispatch_reap_stale(interval '1 second', 3, 100, false)")).isEmpty();
            assertThat(row(id)).isEqualTo(before);
            assertThat(events(id)).isEmpty();
        }
    }
}

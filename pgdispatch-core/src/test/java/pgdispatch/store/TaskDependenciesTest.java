package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import pgdispatch.api.InvalidTaskException;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskClient.Enqueue;
import pgdispatch.testing.TestDatabase;

/**
 * Task dependencies (V12_2): a task waits until its dependencies have succeeded, is cancelled (or runs
 * anyway) when one ends otherwise, all decided by the database for TaskClient and plain SQL alike.
 */
class TaskDependenciesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final String NODE = "node-a";
    private TaskClient client;
    private TaskStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, task_dependencies");
        store = new TaskStore(db.database());
        client = new TaskClient(store, 1 << 20);
    }

    private long task(String kind) {
        return client.enqueue(Enqueue.of(kind, "{}"));
    }

    private List<ClaimedTask> claim() {
        Map<String, Duration> kinds = new java.util.HashMap<>();
        for (String k : List.of("a", "b", "x", "y", "z", "done", "failed", "open", "other", "before")) kinds.put(k, Duration.ofMinutes(1));
        return store.claimDue(new ClaimRequest(NODE, List.of("default"), kinds, 100, 3));
    }

    private ClaimedTask claimOne(long id) {
        return claim().stream().filter(c -> c.id() == id).findFirst().orElseThrow(() -> new AssertionError("task " + id + " not claimed"));
    }

    private void succeed(ClaimedTask c) {
        assertThat(store.completeIfOwned(NODE, List.of(new Outcome.Success(c.id(), c.leaseToken(), null)))).containsKey(c.id());
    }

    private static Map<String, Object> row(long id) {
        return db.rows("SELECT status, dependencies_left, last_error, depends_on::text AS deps FROM tasks WHERE id = " + id).get(0);
    }

    private static String status(long id) {
        return (String) row(id).get("status");
    }

    private static List<Map<String, Object>> events(long id) {
        return db.rows("SELECT event, detail::text AS detail FROM task_events WHERE task_id = " + id + " ORDER BY id");
    }

    @Test
    void waitsUntilEveryDependencyHasSucceededAndIsNeverClaimedMeanwhile() {
        long a = task("a");
        long b = task("b");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(b, a, b));
        assertThat(row(x)).containsEntry("status", "waiting").containsEntry("dependencies_left", 2).containsEntry("deps", "{" + a + "," + b + "}");

        List<ClaimedTask> claimed = claim();
        assertThat(claimed).extracting(ClaimedTask::id).as("the claim never returns a waiting task").containsExactlyInAnyOrder(a, b);
        succeed(claimed.stream().filter(c -> c.id() == a).findFirst().orElseThrow());
        assertThat(row(x)).containsEntry("status", "waiting").containsEntry("dependencies_left", 1);
        assertThat(claim()).isEmpty();
        assertThat(events(x)).isEmpty();

        succeed(claimed.stream().filter(c -> c.id() == b).findFirst().orElseThrow());
        assertThat(row(x)).containsEntry("status", "pending").containsEntry("dependencies_left", 0);
        assertThat(events(x)).singleElement().satisfies(e -> {
            assertThat(e).containsEntry("event", "dependencies_resolved");
            assertThat((String) e.get("detail")).contains("\"dependency\": " + b, "\"dependency_status\": \"succeeded\"");
        });
        assertThat(claim()).extracting(ClaimedTask::id).containsExactly(x);
    }

    @ParameterizedTest
    @ValueSource(strings = {"failed", "cancelled", "quarantined"})
    void aDependencyEndingOtherwiseCancelsTheWaitingTaskWithTheReason(String ending) {
        long a = task("a");
        long other = task("other");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a, other));
        switch (ending) {
            case "failed" -> {
                ClaimedTask c = claimOne(a);
                store.completeIfOwned(NODE, List.of(new Outcome.Failure(a, c.leaseToken(), "boom", true, Duration.ZERO)));
            }
            case "cancelled" -> assertThat(store.cancel(a, "not needed")).isTrue();
            default -> assertThat(store.quarantine(a, "suspicious")).isTrue();
        }
        assertThat(status(a)).isEqualTo(ending);
        assertThat(row(x)).containsEntry("status", "cancelled").containsEntry("last_error", "dependency " + a + " ended " + ending);
        assertThat(events(x)).singleElement().satisfies(e -> {
            assertThat(e).containsEntry("event", "cancelled");
            assertThat((String) e.get("detail")).contains("\"by\": \"dependency\"", "\"dependency\": " + a,
                    "\"dependency_status\": \"" + ending + "\"", "\"reason\": \"dependency " + a + " ended " + ending + "\"");
        });
        assertThat(db.count("tasks WHERE id = " + x + " AND finished_at IS NOT NULL")).isOne();
    }

    @Test
    void thousandsOfWaitingTasksCostTheClaimNothing() {
        long a = task("a");
        db.exec("INSERT INTO tasks (kind, depends_on) SELECT 'x', ARRAY[" + a + "]::bigint[] FROM generate_series(1, 10000)");
        db.exec("INSERT INTO tasks (kind) SELECT 'b' FROM generate_series(1, 600)");
        db.exec("VACUUM ANALYZE tasks");
        var request = new ClaimRequest(NODE, List.of("default"), Map.of("a", Duration.ofMinutes(1), "b", Duration.ofMinutes(1),
                "x", Duration.ofMinutes(1)), 500, 3, false);

        // waiting rows are not in tasks_claim_idx (status = 'pending'): the candidates ("tasks t") are read from
        // it (an index or bitmap walk over the 601 pending rows), never from the 10,000 waiting ones. (The
        // UPDATE's join back to its 500 rows, tasks t_1/t_2, may hash the table: as for finished rows.)
        String plan = String.join("\n", store.explainClaim(request));
        assertThat(plan).containsPattern("Index Scan (using|on) tasks_claim_idx").doesNotContain("Seq Scan on tasks t ");
        assertThat(store.claimDue(request)).hasSize(500).extracting(ClaimedTask::kind).containsOnly("a", "b");
        assertThat(db.count("tasks WHERE status = 'waiting'")).isEqualTo(10000);
        assertThat(db.count("task_dependencies")).isEqualTo(10000);
    }

    @Test
    void theCancellationFollowsAChainOfDependents() {
        long a = task("a");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a));
        long y = client.enqueue(Enqueue.of("y", "{}").dependsOn(x));
        assertThat(store.cancel(a, "stop")).isTrue();
        assertThat(status(x)).isEqualTo("cancelled");
        assertThat(row(y)).containsEntry("status", "cancelled").containsEntry("last_error", "dependency " + x + " ended cancelled");
    }

    /**
     * A chain of {@code length} tasks after {@code after} (each depending on the one before, the first on
     * {@code after}), inserted by SQL in two statements (with statistics in between: without them the
     * insert trigger's look-ups scan the table); returns the id of the last.
     */
    private static long chain(long after, int length) {
        long first = (Long) db.rows("SELECT max(id) + 1 AS id FROM tasks").get(0).get("id");
        String insert = "INSERT INTO tasks (id, kind, depends_on) SELECT g, 'x', ARRAY[CASE WHEN g = " + first + " THEN " + after
                + " ELSE g - 1 END]::bigint[] FROM generate_series(%d, %d) g";
        long split = first + Math.min(length, 500) - 1;
        db.exec(insert.formatted(first, split));
        db.exec("ANALYZE tasks");
        if (length > 500) db.exec(insert.formatted(split + 1, first + length - 1));
        db.rows("SELECT setval(pg_get_serial_sequence('tasks', 'id'), " + (first + length - 1) + ")");
        return first + length - 1;
    }

    /** Every task of the chain first..last is cancelled naming the one before it (root before first), with its event. */
    private static void assertCancelledToItsEnd(long root, String ending, long first, long last) {
        int n = (int) (last - first + 1);
        String dep = "CASE WHEN t.id = " + first + " THEN " + root + " ELSE t.id - 1 END";
        String depStatus = "CASE WHEN t.id = " + first + " THEN '" + ending + "' ELSE 'cancelled' END";
        assertThat(db.count("tasks t WHERE t.id BETWEEN " + first + " AND " + last + " AND t.status = 'cancelled' AND t.finished_at IS NOT NULL"
                + " AND t.dependencies_left = 0 AND t.last_error = format('dependency %s ended %s', " + dep + ", " + depStatus + ")"))
                .isEqualTo(n);
        assertThat(db.count("task_events e JOIN tasks t ON t.id = e.task_id WHERE t.id BETWEEN " + first + " AND " + last
                + " AND e.event = 'cancelled' AND e.detail->>'by' = 'dependency' AND (e.detail->>'dependency')::bigint = " + dep
                + " AND e.detail->>'dependency_status' = " + depStatus + " AND e.detail->>'reason' = t.last_error")).isEqualTo(n);
        assertThat(db.count("task_events WHERE task_id BETWEEN " + first + " AND " + last)).as("one event each").isEqualTo(n);
    }

    // Until V13_7 each link of the cascade nested one more trigger call: from ~700 links the statement ending
    // the first task failed with 'stack depth limit exceeded' (54001) every time, whoever wrote it.
    @ParameterizedTest
    @ValueSource(strings = {"failed", "cancelled", "quarantined"})
    void aChainOfFiveThousandIsCancelledToItsEndWhateverEndsItsFirstTask(String ending) {
        long a = task("a");
        long last = chain(a, 5000);
        switch (ending) {
            case "failed" -> { // a node's permanent failure, through the completer's write
                ClaimedTask c = claimOne(a);
                assertThat(store.completeIfOwned(NODE, List.of(new Outcome.Failure(a, c.leaseToken(), "boom", true, Duration.ZERO))))
                        .containsEntry(a, TaskStatus.FAILED);
            }
            case "cancelled" -> assertThat(store.cancel(a, "not needed")).isTrue();
            default -> { // the reaper, no requeue left
                claimOne(a);
                db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 hour' WHERE id = " + a);
                assertThat(store.requeueStale(Duration.ofMinutes(1), Duration.ofMinutes(1), 0, 100).orElseThrow())
                        .extracting(StaleTask::action).containsExactly("quarantine");
            }
        }
        assertThat(status(a)).isEqualTo(ending);
        assertCancelledToItsEnd(a, ending, a + 1, last);
        assertThat(db.count("task_dependencies")).isZero();
        assertThat(db.count("tasks WHERE status = 'waiting'")).isZero();
    }

    // A lock table entry per cancelled task (an advisory lock each, until V13_7 kept them) made a chain of
    // ~20,000 fail with 'out of shared memory' instead: the cascade holds its first task's lock only.
    @Test
    void theCascadeTakesNoLockTableEntryPerTaskItCancels() throws Exception {
        long a = task("a");
        long last = chain(a, 1000);
        try (Connection c = db.database().dataSource().getConnection(); Statement s = c.createStatement()) {
            c.setAutoCommit(false);
            s.executeUpdate("UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE id = " + a);
            try (var rs = s.executeQuery("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")) {
                rs.next();
                assertThat(rs.getInt(1)).isOne();
            }
            c.commit();
        }
        assertCancelledToItsEnd(a, "cancelled", a + 1, last);
    }

    @Test
    void aTaskThatRunsAnywayStopsTheCascadeAndIsReleasedByItsLastDependency() {
        long a = task("a");
        long b = task("b");
        long end = chain(a, 1000);
        long anyway = client.enqueue(Enqueue.of("x", "{}").dependsOn(end, b).runAnyway());
        long after = chain(anyway, 1000);
        long onlyChain = client.enqueue(Enqueue.of("y", "{}").dependsOn(end).runAnyway()); // the cascade ends its only dependency

        assertThat(store.cancel(a, "not needed")).isTrue();
        assertCancelledToItsEnd(a, "cancelled", a + 2, end); // b sits between a and the chain
        assertThat(row(anyway)).containsEntry("status", "waiting").containsEntry("dependencies_left", 1);
        assertThat(db.count("tasks WHERE id BETWEEN " + (anyway + 1) + " AND " + after + " AND status = 'waiting'")).isEqualTo(1000);
        assertThat(row(onlyChain)).containsEntry("status", "pending").containsEntry("dependencies_left", 0);
        assertThat(events(onlyChain)).singleElement().satisfies(e -> {
            assertThat(e).containsEntry("event", "dependencies_resolved");
            assertThat((String) e.get("detail")).contains("\"dependency\": " + end, "\"dependency_status\": \"cancelled\"");
        });

        assertThat(store.cancel(b, "not needed either")).isTrue();
        assertThat(row(anyway)).containsEntry("status", "pending").containsEntry("dependencies_left", 0);
        assertThat(events(anyway)).singleElement().satisfies(e -> {
            assertThat(e).containsEntry("event", "dependencies_resolved");
            assertThat((String) e.get("detail")).contains("\"dependency\": " + b, "\"dependency_status\": \"cancelled\"");
        });
        ClaimedTask running = claimOne(anyway);
        store.completeIfOwned(NODE, List.of(new Outcome.Failure(anyway, running.leaseToken(), "boom", true, Duration.ZERO)));
        assertCancelledToItsEnd(anyway, "failed", anyway + 1, after);
        assertThat(db.count("task_dependencies")).isZero();
    }

    @Test
    void aTaskThatRunsAnywayIsReleasedOnceEveryDependencyHasEndedHowever() {
        long a = task("a");
        long b = task("b");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a, b).runAnyway());
        assertThat(db.rows("SELECT on_dependency_failure FROM tasks WHERE id = " + x).get(0)).containsEntry("on_dependency_failure", "run");
        assertThat(store.cancel(a, "not needed")).isTrue();
        assertThat(row(x)).containsEntry("status", "waiting").containsEntry("dependencies_left", 1);

        // an operator retry of the ended dependency, ending again, does not count it twice
        assertThat(store.retry(a, "again")).isTrue();
        assertThat(store.cancel(a, "still not needed")).isTrue();
        assertThat(row(x)).containsEntry("status", "waiting").containsEntry("dependencies_left", 1);

        succeed(claimOne(b));
        assertThat(status(x)).isEqualTo("pending");
    }

    @Test
    void theReleasesAreCountedFromTheEventsSinceTheLastLook() {
        TaskQueries q = new TaskQueries(db.database());
        task("before");
        TaskQueries.DependencyEvents start = q.dependencyEventsAfter(null);
        assertThat(start.released()).isZero();
        long a = task("a");
        long b = task("b");
        client.enqueue(Enqueue.of("x", "{}").dependsOn(a));
        client.enqueue(Enqueue.of("y", "{}").dependsOn(b));
        client.enqueue(Enqueue.of("z", "{}").dependsOn(b));
        succeed(claimOne(a));
        store.cancel(b, "stop");

        TaskQueries.DependencyEvents seen = q.dependencyEventsAfter(start.lastEventId());
        assertThat(seen.released()).isOne();
        assertThat(seen.cancelled()).isEqualTo(2);
        assertThat(q.dependencyEventsAfter(seen.lastEventId())).isEqualTo(new TaskQueries.DependencyEvents(seen.lastEventId(), 0, 0));

        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        new pgdispatch.metrics.DispatchMetrics(registry).dependencies(seen.released(), seen.cancelled());
        assertThat(registry.get("pgdispatch.dependencies.released").tag("outcome", "cancelled").counter().count()).isEqualTo(2.0);
        assertThat(registry.get("pgdispatch.dependencies.released").tag("outcome", "released").counter().count()).isEqualTo(1.0);
    }

    @Test
    void aDependencyAlreadyEndedAtEnqueueIsTakenIntoAccountByTheInsert() {
        long done = task("done");
        succeed(claimOne(done));
        long failed = task("failed");
        store.cancel(failed, "gone");

        long afterSuccess = client.enqueue(Enqueue.of("x", "{}").dependsOn(done));
        assertThat(row(afterSuccess)).containsEntry("status", "pending").containsEntry("dependencies_left", 0);

        long afterFailure = client.enqueue(Enqueue.of("x", "{}").dependsOn(done, failed));
        assertThat(row(afterFailure)).containsEntry("status", "cancelled").containsEntry("last_error", "dependency " + failed + " ended cancelled");
        assertThat(events(afterFailure)).singleElement().satisfies(e -> assertThat(e).containsEntry("event", "cancelled"));

        long anyway = client.enqueue(Enqueue.of("x", "{}").dependsOn(failed).runAnyway());
        assertThat(status(anyway)).isEqualTo("pending");

        long open = task("open");
        long mixed = client.enqueue(Enqueue.of("x", "{}").dependsOn(done, open));
        assertThat(row(mixed)).containsEntry("status", "waiting").containsEntry("dependencies_left", 1);
        assertThat(db.count("task_dependencies WHERE task_id = " + mixed)).as("an edge only to the open dependency").isOne();
    }

    @Test
    void anUnknownDependencyIsRefusedWithANamedError() {
        long a = task("a");
        assertThatThrownBy(() -> client.enqueue(Enqueue.of("x", "{}").dependsOn(a, 999_999)))
                .isInstanceOfSatisfying(DependencyRefusedException.class, e -> assertThat(e.missingTaskId()).isEqualTo(999_999L))
                .hasMessage("depends_on: task 999999 does not exist (rule: a task depends only on tasks that exist before it)");
        assertThat(db.count("tasks")).isOne();
        // the same through the idempotent and the unique insert
        assertThatThrownBy(() -> client.enqueue(Enqueue.of("x", "{}").idempotencyKey("k").dependsOn(999_999)))
                .isInstanceOf(DependencyRefusedException.class).hasMessageContaining("task 999999 does not exist");
        assertThatThrownBy(() -> client.submit(Enqueue.of("x", "{}").unique(UniqueKey.byKind()).dependsOn(999_999)))
                .isInstanceOf(DependencyRefusedException.class).hasMessageContaining("task 999999 does not exist");
    }

    @Test
    void aTaskCannotDependOnItselfNorChangeItsDependencies() {
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (id, kind, depends_on) VALUES (500, 'x', '{500}')"))
                .hasMessageContaining("task 500 cannot depend on itself (rule: a task depends only on tasks that exist before it)");
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, depends_on) VALUES ('x', '{}')"))
                .hasMessageContaining("must list 1 to 1000 task ids").hasMessageContaining("tasks_depends_on_check");
        long a = task("a");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a));
        assertThatThrownBy(() -> db.exec("UPDATE tasks SET depends_on = '{" + x + "}' WHERE id = " + a))
                .hasMessageContaining("cannot change after the insert (rule: dependencies are immutable)");
        assertThatThrownBy(() -> db.exec("UPDATE tasks SET status = 'waiting' WHERE id = " + a))
                .hasMessageContaining("tasks_waiting_check");
        assertThatThrownBy(() -> client.enqueue(Enqueue.of("x", "{}").dependsOn(0)))
                .isInstanceOf(InvalidTaskException.class).hasMessage("depends_on=0 is not a task id (ids are positive)");
        assertThatThrownBy(() -> client.enqueue(Enqueue.of("x", "{}").runAnyway()))
                .isInstanceOf(InvalidTaskException.class).hasMessage("on_dependency_failure=run needs depends_on (no task to wait for)");
    }

    @Test
    void aPlainSqlInsertFollowsTheSameRules() {
        long a = task("a");
        long x = (Long) db.rows("INSERT INTO tasks (kind, depends_on, on_dependency_failure) VALUES ('x', '{" + a
                + "}', 'run') RETURNING id").get(0).get("id");
        long y = (Long) db.rows("SELECT pgdispatch_enqueue('y', p_depends_on => ARRAY[" + a + "]::bigint[]) AS id").get(0).get("id");
        assertThat(status(x)).isEqualTo("waiting");
        assertThat(status(y)).isEqualTo("waiting");
        db.exec("UPDATE tasks SET status = 'failed', finished_at = now() WHERE id = " + a);
        assertThat(status(x)).as("runs anyway").isEqualTo("pending");
        assertThat(status(y)).isEqualTo("cancelled");
        assertThat(db.count("task_dependencies")).isZero();
    }

    @Test
    void waitingTasksCanBeCancelledAndQuarantinedByAnOperatorAndTheStatusIsReported() {
        long a = task("a");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a));
        long y = client.enqueue(Enqueue.of("y", "{}").dependsOn(a));
        TaskStore.Enqueued z = client.submit(Enqueue.of("z", "{}").unique(UniqueKey.byKind()).dependsOn(a));
        assertThat(z.existingStatus()).isEqualTo(TaskStatus.WAITING);
        assertThat(store.cancel(x, "no longer wanted")).isTrue();
        assertThat(store.quarantine(y, "look first")).isTrue();
        assertThat(store.applyMatching(BulkAction.CANCEL, new TaskFilter(List.of(TaskStatus.WAITING), null, null, null, 10), "bulk", "test"))
                .extracting(TaskStore.MatchedTask::id).containsExactly(z.id());
        succeed(claimOne(a));
        assertThat(List.of(status(x), status(y), status(z.id()))).containsExactly("cancelled", "quarantined", "cancelled");
        assertThat(new TaskQueries(db.database()).dependencies(x)).hasValueSatisfying(d -> {
            assertThat(d.tasks()).containsExactly(new TaskQueries.DependencyView(a, "a", "succeeded"));
            assertThat(d.onFailure()).isEqualTo("cancel");
        });
        assertThat(new TaskQueries(db.database()).dependencies(a)).isEmpty();
    }

    @Test
    void twoDependenciesEndingAtOnceInTwoTransactionsReleaseTheTaskOnce() throws Exception {
        long a = task("a");
        long b = task("b");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a, b));
        try (Connection c1 = db.database().dataSource().getConnection(); Connection c2 = db.database().dataSource().getConnection()) {
            c1.setAutoCommit(false);
            c2.setAutoCommit(false);
            try (Statement s = c1.createStatement()) {
                s.executeUpdate("UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id = " + a);
            }
            // the second ending waits for the first's row lock on x, then counts from what the first wrote
            CompletableFuture<Void> second = CompletableFuture.runAsync(() -> {
                try (Statement s = c2.createStatement()) {
                    s.executeUpdate("UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id = " + b);
                    c2.commit();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            org.awaitility.Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> db.count(
                    "pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") > 0);
            c1.commit();
            second.get(10, TimeUnit.SECONDS);
        }
        assertThat(row(x)).containsEntry("status", "pending").containsEntry("dependencies_left", 0);
        assertThat(events(x)).extracting(e -> e.get("event")).containsExactly("dependencies_resolved");
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void anInsertRacingTheEndOfItsDependencyIsReleasedByIt(boolean notTheFirstDependent) throws Exception {
        long a = task("a");
        ClaimedTask running = claimOne(a);
        if (notTheFirstDependent) client.enqueue(Enqueue.of("y", "{}").dependsOn(a)); // has_dependents is set already
        long x;
        try (Connection producer = db.database().dataSource().getConnection()) {
            producer.setAutoCommit(false);
            x = client.enqueue(producer, Enqueue.of("x", "{}").dependsOn(a));
            // the completion waits for the producer (its row lock on a, or its advisory lock), then finds the new edge
            CompletableFuture<Void> completion = CompletableFuture.runAsync(() -> succeed(running));
            org.awaitility.Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> db.count(
                    "pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") > 0);
            producer.commit();
            completion.get(10, TimeUnit.SECONDS);
        }
        assertThat(status(x)).isEqualTo("pending");
        assertThat(db.count("tasks WHERE status = 'waiting'")).isZero();
    }

    // the cascade reads a cancelled task's edges under the same lock as the task that ended: an insert of a
    // dependent of a task in the middle of the chain is waited for, then cancelled with it
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void anInsertRacingTheCascadeThroughItsDependencyIsCancelledByIt(boolean notTheFirstDependent) throws Exception {
        long a = task("a");
        long x = client.enqueue(Enqueue.of("x", "{}").dependsOn(a));
        long y = client.enqueue(Enqueue.of("y", "{}").dependsOn(x));
        long w = client.enqueue(Enqueue.of("y", "{}").dependsOn(y));
        if (notTheFirstDependent) client.enqueue(Enqueue.of("y", "{}").dependsOn(w)); // has_dependents of w is set already
        long z;
        try (Connection producer = db.database().dataSource().getConnection()) {
            producer.setAutoCommit(false);
            // the producer holds w's advisory lock (shared), and its row lock when it is w's first dependent
            z = client.enqueue(producer, Enqueue.of("z", "{}").dependsOn(w));
            CompletableFuture<Boolean> cancel = CompletableFuture.supplyAsync(() -> store.cancel(a, "stop"));
            org.awaitility.Awaitility.await().atMost(10, TimeUnit.SECONDS).until(() -> db.count(
                    "pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") > 0);
            producer.commit();
            assertThat(cancel.get(10, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(row(z)).containsEntry("status", "cancelled").containsEntry("last_error", "dependency " + w + " ended cancelled");
        assertThat(db.count("tasks WHERE status = 'waiting'")).isZero();
        assertThat(db.count("task_dependencies")).isZero();
    }

    @Test
    void aRepeatableReadProducerThatCannotSeeTheEndOfItsDependencyFailsToSerialize() throws Exception {
        long a = task("a");
        ClaimedTask running = claimOne(a);
        try (Connection producer = db.database().dataSource().getConnection()) {
            producer.setAutoCommit(false);
            producer.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
            try (Statement s = producer.createStatement()) {
                s.executeQuery("SELECT 1").close(); // the snapshot is taken
            }
            succeed(running);
            assertThatThrownBy(() -> client.enqueue(producer, Enqueue.of("x", "{}").dependsOn(a)))
                    .hasStackTraceContaining("could not serialize access due to concurrent update");
            producer.rollback();
        }
        assertThat(db.count("tasks WHERE kind = 'x'")).isZero();
    }
}

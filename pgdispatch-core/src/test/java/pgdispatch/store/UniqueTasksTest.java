package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskClient.Enqueue;
import pgdispatch.testing.TestDatabase;

/** Unique tasks: the key is computed and enforced by the database, for TaskClient and plain SQL alike. */
class UniqueTasksTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final UniqueKey BY_CUSTOMER = UniqueKey.byKind().withPayloadFields("customer");
    private TaskClient client;
    private TaskStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log");
        store = new TaskStore(db.database());
        client = new TaskClient(store, 1 << 20);
    }

    private static Enqueue report(String payload) {
        return Enqueue.of("report", payload).unique(BY_CUSTOMER);
    }

    @Test
    void aSecondEnqueueWithTheSameKeyReturnsTheExistingTaskAndSaysSo() {
        TaskStore.Enqueued first = client.submit(report("{\"customer\": 42, \"note\": \"a\"}"));
        TaskStore.Enqueued second = client.submit(report("{\"note\": \"b\", \"customer\": 42}"));
        TaskStore.Enqueued other = client.submit(report("{\"customer\": 43}"));

        assertThat(first.created()).isTrue();
        assertThat(second).isEqualTo(new TaskStore.Enqueued(first.id(), false, TaskStore.Enqueued.UNIQUE_KEY, TaskStatus.PENDING));
        assertThat(other.created()).isTrue();
        assertThat(db.count("tasks")).isEqualTo(2);
        assertThat(client.enqueue(report("{\"customer\": 42}"))).as("the plain enqueue returns the holder's id").isEqualTo(first.id());
    }

    @Test
    void theKeyIsHeldWhileRunningAndThroughARetryAndFreedWhenTheTaskFinishes() {
        long id = client.submit(report("{\"customer\": 1}")).id();
        ClaimedTask c = store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("report", Duration.ofMinutes(1)), 10, 3)).get(0);
        assertThat(client.submit(report("{\"customer\": 1}")).id()).isEqualTo(id);

        // a failure with attempts left goes back to pending: still the key's holder, no violation
        store.completeIfOwned("node-a", List.of(new Outcome.Failure(id, c.leaseToken(), "boom", false, Duration.ZERO)));
        assertThat(db.count("tasks WHERE status = 'pending'")).isOne();
        c = store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("report", Duration.ofMinutes(1)), 10, 3)).get(0);
        store.completeIfOwned("node-a", List.of(new Outcome.Success(id, c.leaseToken(), null)));

        TaskStore.Enqueued after = client.submit(report("{\"customer\": 1}"));
        assertThat(after.created()).as("succeeded is not among the held statuses by default").isTrue();
        assertThat(after.id()).isNotEqualTo(id);
    }

    @Test
    void aSucceededTaskHoldsItsKeyWithinItsPeriodWhenAskedTo() {
        UniqueKey hourly = UniqueKey.byKind().withPeriod(Duration.ofHours(1)).alsoHeldWhen(TaskStatus.SUCCEEDED);
        long id = client.submit(Enqueue.of("digest", "{}").unique(hourly)).id();
        db.exec("UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id = " + id);

        TaskStore.Enqueued again = client.submit(Enqueue.of("digest", "{}").unique(hourly));
        assertThat(again).isEqualTo(new TaskStore.Enqueued(id, false, TaskStore.Enqueued.UNIQUE_KEY, TaskStatus.SUCCEEDED));

        // the key of the next hour's bucket differs
        String now = key("digest", null, "{}", null, "interval '1 hour'", "now()");
        String nextHour = key("digest", null, "{}", null, "interval '1 hour'", "now() + interval '1 hour'");
        assertThat(nextHour).isNotEqualTo(now);
        assertThat(db.rows("SELECT unique_key FROM tasks WHERE id = " + id).get(0).get("unique_key")).isEqualTo(now);
    }

    @Test
    void theQueueIsPartOfTheKeyOnlyWhenChosen() {
        UniqueKey byKind = UniqueKey.byKind();
        assertThat(client.submit(Enqueue.of("sync", "{}").unique(byKind).queue("a")).created()).isTrue();
        assertThat(client.submit(Enqueue.of("sync", "{}").unique(byKind).queue("b")).created()).isFalse();

        UniqueKey perQueue = UniqueKey.byKind().withQueue();
        assertThat(client.submit(Enqueue.of("index", "{}").unique(perQueue).queue("a")).created()).isTrue();
        assertThat(client.submit(Enqueue.of("index", "{}").unique(perQueue).queue("b")).created()).isTrue();
        assertThat(client.submit(Enqueue.of("index", "{}").unique(perQueue).queue("b")).created()).isFalse();
    }

    @Test
    void concurrentEnqueuesOfOneKeyCreateExactlyOneTask() throws Exception {
        int n = 8;
        CyclicBarrier start = new CyclicBarrier(n);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<TaskStore.Enqueued>> results = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                results.add(pool.submit(() -> {
                    start.await(10, TimeUnit.SECONDS);
                    return client.submit(report("{\"customer\": 7}"));
                }));
            }
            List<TaskStore.Enqueued> all = new ArrayList<>();
            for (Future<TaskStore.Enqueued> f : results) all.add(f.get(30, TimeUnit.SECONDS));

            assertThat(all).filteredOn(TaskStore.Enqueued::created).hasSize(1);
            assertThat(all).extracting(TaskStore.Enqueued::id).containsOnly(all.get(0).id());
            assertThat(db.count("tasks")).isOne();
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void plainSqlProducersUseTheSameKeyAndTheSameIndex() {
        long id = client.submit(report("{\"customer\": 5}")).id();
        String insert = """
                INSERT INTO tasks (kind, payload, unique_key, unique_states)
                VALUES ('report', '{"customer": 5, "via": "sql"}',
                        pgdispatch_unique_key('report', NULL, '{"customer": 5, "via": "sql"}', ARRAY['customer'], NULL),
                        '{waiting,pending,running}')
                ON CONFLICT DO NOTHING
                """;
        assertThat(db.exec(insert)).as("held by the task TaskClient enqueued").isZero();
        db.exec("UPDATE tasks SET status = 'cancelled' WHERE id = " + id);
        assertThat(db.exec(insert)).isOne();
    }

    @Test
    void theDatabaseRefusesAKeyWithoutTheStatusesATaskMovesThroughOnItsOwn() {
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, unique_key, unique_states) VALUES ('x', 'k', '{pending}')"))
                .hasMessageContaining("tasks_unique_key_check");
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, unique_key) VALUES ('x', 'k')"))
                .hasMessageContaining("tasks_unique_key_check");
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, unique_states) VALUES ('x', '{waiting,pending,running}')"))
                .hasMessageContaining("tasks_unique_key_check");
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, unique_key, unique_states) VALUES ('x', 'k', '{waiting,pending,running,done}')"))
                .hasMessageContaining("tasks_unique_key_check");
    }

    @Test
    void theKeyIgnoresFieldOrderAndSpacingButNotValues() {
        String a = key("k", null, "{\"a\": 1, \"b\": [1, 2]}", "ARRAY['*']", null, "now()");
        String b = key("k", null, "{\"b\":[1,2],\"a\":1}", "ARRAY['*']", null, "now()");
        String c = key("k", null, "{\"a\": 1, \"b\": [2, 1]}", "ARRAY['*']", null, "now()");
        assertThat(a).isEqualTo(b).isNotEqualTo(c).startsWith("k:");
    }

    @Test
    void anOperatorRetryLeavesOutATaskWhoseKeyAnotherTaskHoldsNow() {
        long old = client.submit(report("{\"customer\": 9}")).id();
        db.exec("UPDATE tasks SET status = 'failed', finished_at = now() WHERE id = " + old);
        long current = client.submit(report("{\"customer\": 9}")).id();

        List<TaskStore.MatchedTask> retried = store.applyMatching(BulkAction.RETRY,
                new TaskFilter(List.of(TaskStatus.FAILED), "report", null, null, 10), "again", "t");

        assertThat(retried).isEmpty();
        assertThat(db.rows("SELECT status FROM tasks WHERE id = " + old).get(0).get("status")).isEqualTo("failed");
        assertThat(current).isNotEqualTo(old);
    }

    @Test
    void insideTheCallersTransactionTheTaskExistsOnlyIfItCommits() throws Exception {
        try (Connection c = db.database().dataSource().getConnection()) {
            c.setAutoCommit(false);
            assertThat(client.submit(c, report("{\"customer\": 3}")).created()).isTrue();
            c.rollback();
        }
        assertThat(client.submit(report("{\"customer\": 3}")).created()).isTrue();
    }

    @Test
    void badUniqueOptionsAreRefusedNamingTheRule() {
        assertThatThrownBy(() -> UniqueKey.byKind().withPeriod(Duration.ofMillis(10))).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unique period=PT0.01S must be from 1 second to 366 days");
        assertThatThrownBy(() -> UniqueKey.byKind().alsoHeldWhen(TaskStatus.PENDING)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unique states: pending is always held; name only finished statuses (succeeded, failed, cancelled, quarantined)");
        assertThatThrownBy(() -> UniqueKey.byKind().withPayloadFields("*", "a")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unique payload fields: * (the whole payload) stands alone, got [*, a]");
    }

    private static String key(String kind, String queue, String payload, String fields, String period, String at) {
        return (String) db.rows("SELECT pgdispatch_unique_key(" + lit(kind) + ", " + (queue == null ? "NULL" : lit(queue)) + ", "
                + lit(payload) + "::jsonb, " + (fields == null ? "NULL" : fields) + ", " + (period == null ? "NULL" : period)
                + ", " + at + ") AS k").get(0).get("k");
    }

    private static String lit(String s) {
        return "'" + s.replace("'", "''") + "'";
    }
}

package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.CompensatingHandler;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Outcome;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 14, item 7: saga compensation end to end, real dispatchers against a real database (lease 4 s,
 * renew 1 s, node timeout 2 s); every wait is on a visible condition.
 */
class CompensationTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final RetryPolicy NO_DELAY = new RetryPolicy(Duration.ZERO, Duration.ZERO, 0);
    private final List<Dispatcher> started = new ArrayList<>();
    private TaskStore store;
    private TaskClient client;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        store = new TaskStore(db.database());
        client = new TaskClient(store, 1 << 20);
    }

    @AfterEach
    void stopAll() {
        started.forEach(Dispatcher::halt);
    }

    interface Body {
        Object run(TaskContext c) throws Exception;
    }

    /** A saga step: {@code handle} and {@code compensate} as given. */
    record Saga(String kind, Body handle, Body compensate) implements CompensatingHandler {
        @Override
        public Object handle(TaskContext c) throws Exception {
            return handle.run(c);
        }

        @Override
        public void compensate(TaskContext c) throws Exception {
            compensate.run(c);
        }
    }

    /** A kind without compensation. */
    record Plain(String kind, Body handle) implements TaskHandler {
        @Override
        public Object handle(TaskContext c) throws Exception {
            return handle.run(c);
        }
    }

    private Dispatcher start(String node, TaskHandler... handlers) throws InterruptedException {
        DispatcherConfig cfg = db.config().withNode(node, List.of("default"), 2)
                .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(2))
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500));
        var b = Dispatcher.builder(cfg).retryPolicy(NO_DELAY);
        for (TaskHandler h : handlers) b.handler(h);
        Dispatcher d = b.build();
        started.add(d);
        return d.start();
    }

    private long enqueue(String kind, int maxAttempts) {
        return client.enqueue(TaskClient.Enqueue.of(kind, "{}").maxAttempts(maxAttempts));
    }

    private List<String> events(long id) {
        return db.rows("SELECT event FROM task_events WHERE task_id = " + id + " ORDER BY id").stream()
                .map(r -> (String) r.get("event")).toList();
    }

    private Map<String, Object> row(long id) {
        return TaskRows.row(db, id);
    }

    private void awaitStatus(long id, String status) {
        await().atMost(30, TimeUnit.SECONDS).until(() -> status.equals(row(id).get("status")));
    }

    @Test
    void compensationRunsExactlyOnceAcrossANodeCrash() throws Exception {
        CountDownLatch compensatingOnA = new CountDownLatch(1);
        CountDownLatch never = new CountDownLatch(1);
        List<String> finished = new CopyOnWriteArrayList<>();
        Dispatcher a = start("node-a", new Saga("charge", c -> {
            throw new PermanentFailure("card declined");
        }, c -> {
            compensatingOnA.countDown();
            never.await(); // halted mid-compensation: never finishes
            finished.add("node-a");
            return null;
        }));
        long id = enqueue("charge", 3);
        assertThat(compensatingOnA.await(20, TimeUnit.SECONDS)).isTrue();
        long tokenA = ((Number) row(id).get("lease_token")).longValue();
        assertThat(row(id)).containsEntry("status", "running").containsEntry("compensating", true)
                .containsEntry("owner_id", "node-a");

        a.halt(); // a crash: nothing written; its compensation lease (4 s) runs out
        start("node-b", new Saga("charge", c -> "unused", c -> {
            finished.add("node-b attempt " + c.attempt() + " compensating=" + c.compensating());
            return null;
        }));

        awaitStatus(id, "compensated");
        assertThat(finished).containsExactly("node-b attempt " + row(id).get("attempts") + " compensating=true");
        assertThat(row(id)).containsEntry("owner_id", "node-b").containsEntry("attempts_before_compensation", 1);
        assertThat((String) row(id).get("last_error")).contains("card declined");
        assertThat(((Number) row(id).get("lease_token")).longValue()).isGreaterThan(tokenA);
        // node-a's late success under its old token is refused: one compensated, ever
        assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Success(id, tokenA, null)))).isEmpty();
        assertThat(events(id)).containsSubsequence("claimed", "failed", "compensation_started", "compensation_started",
                "compensated");
        assertThat(events(id).stream().filter("compensated"::equals)).hasSize(1);
        assertThat(events(id)).contains("completion_refused");
        assertThat(row(id)).containsEntry("status", "compensated");
    }

    @Test
    void cancelledAfterStartCompensates() throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        List<Long> compensated = new CopyOnWriteArrayList<>();
        start("node-a", new Saga("reserve", c -> {
            running.countDown();
            new CountDownLatch(1).await(); // until interrupted
            return null;
        }, c -> {
            compensated.add(c.taskId());
            return null;
        }));
        long id = enqueue("reserve", 3);
        assertThat(running.await(20, TimeUnit.SECONDS)).isTrue();

        assertThat(store.cancel(id, "customer changed their mind")).isTrue();

        awaitStatus(id, "compensated");
        assertThat(compensated).containsExactly(id);
        assertThat(events(id)).containsSubsequence("claimed", "cancelled", "compensation_started", "compensated");
        assertThat(row(id)).containsEntry("last_error", "customer changed their mind");
    }

    @Test
    void cancelledBeforeStartDoesNotCompensate() throws Exception {
        List<Long> compensated = new CopyOnWriteArrayList<>();
        long id = enqueue("reserve", 3);
        assertThat(store.cancel(id, "never mind")).isTrue();
        assertThat(row(id)).containsEntry("status", "cancelled");

        start("node-a", new Saga("reserve", c -> "done", c -> {
            compensated.add(c.taskId());
            return null;
        }));
        long later = enqueue("reserve", 3); // the node has polled once this one is done
        awaitStatus(later, "succeeded");

        assertThat(row(id)).containsEntry("status", "cancelled");
        assertThat(compensated).isEmpty();
        assertThat(events(id)).containsExactly("cancelled");
    }

    @Test
    void compensationThatKeepsFailingIsQuarantinedWithBothErrors() throws Exception {
        start("node-a", new Saga("ship", c -> {
            throw new IllegalStateException("warehouse offline");
        }, c -> {
            throw new IllegalStateException("refund api down (attempt " + c.attempt() + ")");
        }));
        long id = enqueue("ship", 2);

        awaitStatus(id, "quarantined");
        assertThat(row(id)).containsEntry("compensating", true).containsEntry("attempts", 2)
                .containsEntry("attempts_before_compensation", 2);
        assertThat((String) row(id).get("last_error")).contains("warehouse offline");
        assertThat((String) row(id).get("compensation_error")).contains("refund api down (attempt 2)");
        assertThat(events(id)).containsExactly("claimed", "retry_scheduled", "claimed", "failed",
                "compensation_started", "compensation_failed", "compensation_started", "quarantined");
        String detail = (String) db.rows("SELECT detail::text AS d FROM task_events WHERE task_id = " + id
                + " AND event = 'quarantined'").get(0).get("d");
        assertThat(detail).contains("\"by\": \"compensation\"").contains("warehouse offline").contains("refund api down");
    }

    @Test
    void kindsWithoutCompensateEndAsBefore() throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        start("node-a", new Plain("plain-fail", c -> {
            throw new PermanentFailure("no");
        }), new Plain("plain-block", c -> {
            running.countDown();
            new CountDownLatch(1).await();
            return null;
        }));
        long failing = enqueue("plain-fail", 3);
        long blocked = enqueue("plain-block", 3);
        awaitStatus(failing, "failed");
        assertThat(running.await(20, TimeUnit.SECONDS)).isTrue();
        assertThat(store.cancel(blocked, "stop")).isTrue();

        assertThat(row(blocked)).containsEntry("status", "cancelled").containsEntry("compensable", false);
        assertThat(row(failing)).containsEntry("compensating", false).containsEntry("compensation_error", null);
        assertThat(events(failing)).containsExactly("claimed", "failed");
        assertThat(events(blocked)).containsExactly("claimed", "cancelled");
    }

    @Test
    void compensatedIsTerminal() throws Exception {
        start("node-a", new Saga("undo", c -> {
            throw new PermanentFailure("boom");
        }, c -> null));
        long id = enqueue("undo", 1);
        awaitStatus(id, "compensated");

        assertThat(store.cancel(id, "late")).isFalse();
        assertThat(store.quarantine(id, "late")).isFalse();
        long token = ((Number) row(id).get("lease_token")).longValue();
        assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Failure(id, token, "late", false, Duration.ZERO, null))))
                .isEmpty();
        assertThat(row(id)).containsEntry("status", "compensated");
        // an operator's retry starts a fresh series, out of the compensation phase
        started.forEach(Dispatcher::halt);
        assertThat(store.retry(id)).isTrue();
        assertThat(row(id)).containsEntry("compensating", false).containsEntry("attempts", 0);
    }
}

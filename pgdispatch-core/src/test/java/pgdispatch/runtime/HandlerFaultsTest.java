package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.util.RawValue;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.Outcome;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 11, items 1 and 2: what a handler returns or throws never stops the node. Each test has one
 * bad task and a good one behind it, on a node with a single worker: on the old code the bad one
 * stopped the completer (text PostgreSQL refuses) or leaked the only slot (an Error, a throwing
 * {@code timeout()}, a handler that ignores its interrupt), so the good one never finished.
 */
class HandlerFaultsTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final RetryPolicy NO_DELAY = new RetryPolicy(Duration.ZERO, Duration.ZERO, 0);
    private final List<Dispatcher> started = new ArrayList<>();
    private TaskClient client;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        client = new TaskClient(new TaskStore(db.database()), 1 << 20);
    }

    @AfterEach
    void stopAll() {
        started.forEach(Dispatcher::halt);
    }

    /** A handler from a lambda, with an optional timeout; {@code timeoutThrows} makes timeout() throw. */
    record Handler(String kind, DispatcherTest.Handler.Body body, Duration timeout, boolean timeoutThrows) implements TaskHandler {
        static Handler of(String kind, DispatcherTest.Handler.Body body) {
            return new Handler(kind, body, null, false);
        }

        @Override
        public Object handle(TaskContext context) throws Exception {
            return body.run(context);
        }

        @Override
        public Duration timeout() {
            if (timeoutThrows) throw new IllegalStateException("timeout() of " + kind + " is broken");
            return timeout;
        }
    }

    private Dispatcher start(DispatcherConfig cfg, TaskHandler... handlers) throws InterruptedException {
        var b = Dispatcher.builder(cfg).retryPolicy(NO_DELAY);
        for (TaskHandler h : handlers) b.handler(h);
        Dispatcher d = b.build();
        started.add(d);
        return d.start();
    }

    private DispatcherConfig oneWorker() {
        return db.config().withNode("node-a", List.of("default"), 1)
                .withTimings(Duration.ofSeconds(10), Duration.ofSeconds(1), Duration.ofSeconds(20), Duration.ofSeconds(5))
                .withPollInterval(Duration.ofMillis(100)).withDrainTimeout(Duration.ofMillis(200));
    }

    private long enqueue(String kind) {
        return client.enqueue(new TaskClient.Enqueue(kind, "{}", "default", 0, null, 1, null));
    }

    private Map<String, Object> row(long id) {
        return db.rows("SELECT status, last_error, result::text AS result, result->>'s' AS s FROM tasks WHERE id = " + id).get(0);
    }

    private void awaitStatus(long id, String status) {
        await().atMost(20, TimeUnit.SECONDS).untilAsserted(() -> assertThat(row(id).get("status")).isEqualTo(status));
    }

    /** The good task behind the bad one: it finishing proves the completer and the slot are free. */
    private void goodTaskStillRuns() {
        long good = enqueue("ok");
        awaitStatus(good, "succeeded");
    }

    private static final Handler OK = Handler.of("ok", c -> Map.of("fine", true));

    // ---------------------------------------------------------------- item 1: outcomes PostgreSQL refuses

    @Test
    void nulCharacterInAJsonResultIsStoredEscaped22P05() throws Exception {
        start(oneWorker(), OK, Handler.of("nul-result", c -> Map.of("s", "a\u0000b")));
        long bad = enqueue("nul-result");
        awaitStatus(bad, "succeeded");
        assertThat(row(bad).get("s")).isEqualTo("a\\u0000b");
        goodTaskStillRuns();
    }

    @Test
    void nulByteInAnExceptionMessageIsStoredEscaped22021() throws Exception {
        start(oneWorker(), OK, Handler.of("nul-error", c -> {
            throw new IllegalStateException("bad\u0000byte");
        }));
        long bad = enqueue("nul-error");
        awaitStatus(bad, "failed");
        assertThat((String) row(bad).get("last_error")).isEqualTo("java.lang.IllegalStateException: bad\\u0000byte");
        goodTaskStillRuns();
    }

    @Test
    void nulInAHeartbeatMessageAndCheckpointIsStoredEscaped() throws Exception {
        start(oneWorker(), OK, Handler.of("nul-heartbeat", c -> {
            assertThat(c.heartbeat(Map.of("at", "x\u0000"), "step\u0000one")).isTrue();
            return null;
        }));
        long t = enqueue("nul-heartbeat");
        awaitStatus(t, "succeeded");
        assertThat(db.rows("SELECT progress->>'message' AS m, progress->'checkpoint'->>'at' AS a FROM tasks WHERE id = " + t).get(0))
                .containsEntry("m", "step\\u0000one").containsEntry("a", "x\\u0000");
    }

    @Test
    void loneSurrogateInAResultBecomesTheReplacementCharacter() throws Exception {
        start(oneWorker(), OK, Handler.of("surrogate", c -> Map.of("s", "x\uD800y")),
                // the same as a JSON escape (raw JSON): PostgreSQL's jsonb refuses it (22P02)
                Handler.of("escaped-surrogate", c -> new RawValue("{\"s\": \"\\ud800y\"}")));
        long t = enqueue("surrogate");
        long escaped = enqueue("escaped-surrogate");
        awaitStatus(t, "succeeded");
        awaitStatus(escaped, "succeeded");
        assertThat(row(t).get("s")).as("not pgjdbc's silent '?'").isEqualTo("x\uFFFDy");
        assertThat(row(escaped).get("s")).isEqualTo("\uFFFDy");
        goodTaskStillRuns();
    }

    @Test
    void resultTheDatabaseRefusesIsWrittenAsAPermanentFailureSayingSo22P02() throws Exception {
        // raw JSON that is not JSON: nothing cleaning could do makes PostgreSQL take it (22P02)
        start(oneWorker(), OK, Handler.of("raw-broken", c -> new RawValue("{\"t\": [1,}")));
        long bad = enqueue("raw-broken");
        awaitStatus(bad, "failed");
        assertThat((String) row(bad).get("last_error")).startsWith("outcome not storable: SQLSTATE 22P02:");
        assertThat((String) db.rows("SELECT detail->>'note' AS note FROM task_events WHERE event = 'failed' AND task_id = " + bad)
                .get(0).get("note")).contains("result was refused by the database", "written as a permanent failure");
        goodTaskStillRuns();
    }

    @Test
    void overSizeResultFailsForGoodNamingTheRule() throws Exception {
        start(oneWorker().withMaxResultBytes(1000), OK, Handler.of("big", c -> Map.of("s", "x".repeat(2000))));
        long bad = enqueue("big");
        awaitStatus(bad, "failed");
        assertThat((String) row(bad).get("last_error")).isEqualTo("result of 2008 bytes exceeds TASK_MAX_RESULT_BYTES=1000");
        assertThat(row(bad).get("result")).isNull();
        goodTaskStillRuns();
    }

    @Test
    void oneRefusedOutcomeInABatchLetsTheRestOfTheBatchBeWritten() throws Exception {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, 5)");
        List<ClaimedTask> tasks = store.claimDue(new ClaimRequest("node-a", List.of("default"),
                Map.of("noop", Duration.ofMinutes(5)), 5, 3));
        HeldLeases leases = new HeldLeases();
        Completer completer = new Completer("node-a", store::writeOutcomes, leases, new DispatchMetrics(new SimpleMeterRegistry()), () -> {});
        for (ClaimedTask t : tasks) {
            // the third result is not JSON at all: refused whatever is cleaned (22P02)
            String result = t == tasks.get(2) ? "{not json" : "{\"n\": " + t.id() + "}";
            completer.submit(leases.add(t), new Outcome.Success(t.id(), t.leaseToken(), result));
        }
        completer.start(); // one batch: all five were queued before the thread started
        try {
            assertThat(completer.awaitFlushed(20_000)).isTrue();
        } finally {
            completer.halt();
        }
        assertThat(db.count("tasks WHERE status = 'succeeded'")).isEqualTo(4);
        assertThat(db.count("tasks WHERE status = 'failed' AND id = " + tasks.get(2).id())).isEqualTo(1);
        assertThat(leases.size()).isZero();
    }

    @Test
    void staleOutcomeBesideTheCurrentOneOfTheSameTaskCountsAsRefusedNotAccepted() throws Exception {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) VALUES ('noop')");
        var request = new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(5)), 1, 3);
        ClaimedTask first = store.claimDue(request).get(0);
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second'");
        // another node's reaper requeues the expired lease and this node claims the task again (a node no
        // longer takes over its own expired lease, issue 11 item 5): it holds two tokens of one task
        store.requeueStale(Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 100);
        ClaimedTask again = store.claimDue(request).get(0);
        HeldLeases leases = new HeldLeases();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        Completer completer = new Completer("node-a", store::writeOutcomes, leases, new DispatchMetrics(registry), () -> {});
        completer.submit(leases.add(first), new Outcome.Success(first.id(), first.leaseToken(), null));
        completer.submit(leases.add(again), new Outcome.Success(again.id(), again.leaseToken(), null));
        completer.start();
        try {
            assertThat(completer.awaitFlushed(20_000)).isTrue();
        } finally {
            completer.halt();
        }
        assertThat(registry.get("pgdispatch.completions.refused").counter().count()).isEqualTo(1);
        assertThat(registry.get("pgdispatch.tasks.succeeded").counter().count()).isEqualTo(1);
    }

    @Test
    void withoutAnExplicitPolicyTheRetryBackoffComesFromTheConfiguration() throws Exception {
        Dispatcher d = Dispatcher.builder(oneWorker().withRetryBackoff(Duration.ofSeconds(60), Duration.ofSeconds(600)))
                .handler(Handler.of("flaky", c -> {
                    throw new IllegalStateException("try again later");
                })).build();
        started.add(d);
        d.start();
        long t = client.enqueue(new TaskClient.Enqueue("flaky", "{}", "default", 0, null, 3, null));
        await().atMost(20, TimeUnit.SECONDS).until(() -> db.count("task_events WHERE event = 'retry_scheduled'") == 1);
        double delay = ((Number) db.rows("SELECT extract(epoch FROM run_at - now()) AS s FROM tasks WHERE id = " + t)
                .get(0).get("s")).doubleValue();
        assertThat(delay).as("TASK_RETRY_BASE_S=60 with ±20%% jitter (the default policy would give about 1 s)").isBetween(45.0, 73.0);
    }

    // ---------------------------------------------------------------- item 2: Throwables outside the narrow catch

    @Test
    void handlerThrowingAnErrorFailsItsAttemptAndFreesTheSlot() throws Exception {
        start(oneWorker(), OK, Handler.of("oom", c -> {
            throw new OutOfMemoryError("simulated by the handler");
        }));
        long bad = enqueue("oom");
        awaitStatus(bad, "failed");
        assertThat((String) row(bad).get("last_error")).isEqualTo("java.lang.OutOfMemoryError: simulated by the handler");
        goodTaskStillRuns();
    }

    @Test
    void handlerWhoseTimeoutThrowsFailsItsAttemptAndFreesTheSlot() throws Exception {
        start(oneWorker(), OK, new Handler("bad-timeout", c -> "never runs", null, true));
        long bad = enqueue("bad-timeout");
        awaitStatus(bad, "failed");
        assertThat((String) row(bad).get("last_error")).isEqualTo("java.lang.IllegalStateException: timeout() of bad-timeout is broken");
        goodTaskStillRuns();
    }

    @Test
    void handlerIgnoringItsInterruptIsAbandonedAfterTheGraceAndTheNodeGoesOn() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        Dispatcher node = start(oneWorker(), OK, new Handler("deaf", c -> {
            while (release.getCount() > 0) {
                try {
                    release.await();
                } catch (InterruptedException ignored) {
                    // deliberately deaf to the interrupt of its timeout
                }
            }
            return "late";
        }, Duration.ofMillis(300), false));
        long bad = enqueue("deaf");
        awaitStatus(bad, "failed");
        assertThat((String) row(bad).get("last_error"))
                .isEqualTo("timed out after 300 ms; the handler ignored its interruption for 1000 ms, its thread was abandoned");
        goodTaskStillRuns();
        assertThat(node.held()).as("neither lease is held any more").isZero();

        release.countDown(); // the stuck handler returns at last: its "late" result is discarded
        goodTaskStillRuns();
        assertThat(row(bad).get("status")).isEqualTo("failed");
        assertThat(db.count("task_events WHERE event IN ('failed', 'succeeded') AND task_id = " + bad)).isEqualTo(1);
    }
}

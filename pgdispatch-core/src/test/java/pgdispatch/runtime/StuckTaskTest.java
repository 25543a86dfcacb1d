package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.StuckPolicy;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 14 on a real node: a handler that stops reporting progress is judged by its own cadence at a
 * renewal, interrupted, and its attempt ended by its kind's policy; one that keeps reporting is never
 * judged; extensions are bounded per attempt and the handler is told. Renew 1 s; the policy's floor is
 * 2 s instead of 60 s so the test runs in seconds (the default factor 5 is kept).
 */
class StuckTaskTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final StuckPolicy FAST = StuckPolicy.DEFAULT.withFloor(Duration.ofSeconds(2));
    private final List<Dispatcher> started = new ArrayList<>();
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private TaskClient client;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        client = new TaskClient(new TaskStore(db.database()), 1 << 20);
    }

    @AfterEach
    void stopAll() {
        started.forEach(Dispatcher::halt);
        await().atMost(5, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName)
                .noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    interface Body {
        Object run(TaskContext c) throws Exception;
    }

    record Handler(String kind, StuckPolicy stuckPolicy, Body body) implements TaskHandler {
        @Override
        public Object handle(TaskContext context) throws Exception {
            return body.run(context);
        }
    }

    private void start(TaskHandler h) throws InterruptedException {
        DispatcherConfig cfg = db.config().withNode("node-a", List.of("default"), 4)
                .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(2))
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500));
        Dispatcher d = Dispatcher.builder(cfg).handler(h).meterRegistry(registry)
                .retryPolicy(new RetryPolicy(Duration.ZERO, Duration.ZERO, 0)).build();
        started.add(d);
        d.start();
    }

    private String status(long id) {
        return (String) db.rows("SELECT status FROM tasks WHERE id = " + id).get(0).get("status");
    }

    @Test
    void handlerThatStopsReportingIsInterruptedAndItsAttemptRetried() throws Exception {
        AtomicBoolean interrupted = new AtomicBoolean();
        start(new Handler("hangs", FAST, c -> {
            if (c.attempt() > 1) return "second attempt";
            for (int i = 0; i < 3; i++) {
                c.heartbeat(i, "step " + i);
                Thread.sleep(100);
            }
            try {
                Thread.sleep(Long.MAX_VALUE); // hung: no more progress
            } catch (InterruptedException e) {
                interrupted.set(true);
                throw e;
            }
            return "never";
        }));
        long id = client.enqueue(TaskClient.Enqueue.of("hangs", "{}"));

        await().atMost(30, TimeUnit.SECONDS).until(() -> status(id).equals("succeeded"));
        assertThat(interrupted).isTrue();
        var stuck = db.rows("SELECT (detail->>'silence_ms')::bigint AS silence, (detail->>'bound_ms')::bigint AS bound,"
                + " detail->>'last_message' AS msg, detail->>'policy' AS policy, lease_token"
                + " FROM task_events WHERE event = 'stuck' AND task_id = " + id);
        assertThat(stuck).hasSize(1);
        assertThat(stuck.get(0)).containsEntry("msg", "step 2").containsEntry("policy", "fail_attempt")
                .containsEntry("bound", 2000L).containsEntry("lease_token", 1L);
        // judged at the first renewal after the bound: within one renewal interval (1 s) of it, plus slack
        assertThat((Long) stuck.get(0).get("silence")).isBetween(2000L, 4000L);
        assertThat(db.rows("SELECT attempts, result::text AS r FROM tasks WHERE id = " + id).get(0))
                .containsEntry("attempts", 2).containsEntry("r", "\"second attempt\"");
        assertThat(db.count("task_events WHERE event = 'lease_lost' AND task_id = " + id)).isZero();
        assertThat(registry.get("pgdispatch.tasks.stuck").tag("kind", "hangs").tag("policy", "fail_attempt").counter()
                .count()).isEqualTo(1.0);
    }

    @Test
    void handlerThatKeepsReportingIsNeverJudgedStuck() throws Exception {
        // reports every 150 ms for 4 s: four renewals see it, each well within its 2 s bound
        start(new Handler("steady", FAST, c -> {
            long until = System.nanoTime() + Duration.ofSeconds(4).toNanos();
            int i = 0;
            while (System.nanoTime() < until) {
                c.heartbeat(i, "step " + i++);
                Thread.sleep(150);
            }
            return i;
        }));
        long id = client.enqueue(TaskClient.Enqueue.of("steady", "{}"));

        await().atMost(30, TimeUnit.SECONDS).until(() -> status(id).equals("succeeded"));
        assertThat(db.count("task_events WHERE event = 'stuck'")).isZero();
        assertThat(db.rows("SELECT attempts, renew_count FROM tasks WHERE id = " + id).get(0))
                .containsEntry("attempts", 1);
        assertThat((Integer) db.rows("SELECT renew_count FROM tasks WHERE id = " + id).get(0).get("renew_count"))
                .as("renewals happened while it ran").isGreaterThanOrEqualTo(2);
    }

    @Test
    void extensionsAreGrantedTwicePerAttemptThenRefused() throws Exception {
        List<Boolean> answers = new CopyOnWriteArrayList<>();
        start(new Handler("extends", FAST, c -> {
            for (int i = 0; i < 3; i++) answers.add(c.extendLease(Duration.ofMinutes(5), "bulk copy " + i));
            return null;
        }));
        long id = client.enqueue(TaskClient.Enqueue.of("extends", "{}"));

        await().atMost(30, TimeUnit.SECONDS).until(() -> status(id).equals("succeeded"));
        assertThat(answers).containsExactly(true, true, false);
        assertThat(db.count("task_events WHERE event = 'lease_extended' AND task_id = " + id)).isEqualTo(2);
        assertThat(db.count("task_events WHERE event = 'extension_refused' AND task_id = " + id)).isOne();
        assertThat(registry.get("pgdispatch.lease.extensions").tag("kind", "extends").tag("answer", "refused").counter().count())
                .isEqualTo(1.0);
    }
}

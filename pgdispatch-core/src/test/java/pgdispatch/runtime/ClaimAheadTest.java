package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/** The claim loop's local buffer (claim-ahead) keeps one claim and one outcome event per task and releases unstarted tasks at stop. */
class ClaimAheadTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    /** {@code gate}: returns at once for {"wait":false}, else waits until the test opens the gate. */
    static final class Gate implements TaskHandler {
        final CountDownLatch open = new CountDownLatch(1);
        final AtomicInteger started = new AtomicInteger();

        @Override
        public String kind() {
            return "gate";
        }

        @Override
        public Object handle(TaskContext context) throws InterruptedException {
            if (!context.payload().path("wait").asBoolean(true)) return null;
            started.incrementAndGet();
            open.await();
            return null;
        }
    }

    private DispatcherConfig config(String node) {
        Map<String, String> env = new HashMap<>();
        env.put("TASK_DRAIN_S", "0");
        env.put("PGDISPATCH_HTTP_PORT", "off");
        return DispatcherConfig.fromEnv(env).withDatabaseUrl(db.url()).withNode(node, List.of("default"), 4);
    }

    @Test
    void drainsManyShortTasksWithExactlyOneClaimAndOneSuccessEventEach() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log");
        new TaskStore(db.database()).enqueueMany("default", "noop", Collections.nCopies(3000, "{}"), 0, 5);
        Dispatcher d = Dispatcher.builder(config("node-drain")).claimBatch(200).build().start();
        try {
            await().atMost(Duration.ofSeconds(60)).until(() -> db.count("tasks WHERE status = 'succeeded'") == 3000);
        } finally {
            d.stop();
        }
        assertThat(db.count("tasks WHERE attempts <> 1 OR requeue_count <> 0")).isZero();
        assertThat(db.rows("SELECT event, count(*) AS n, count(DISTINCT task_id) AS tasks FROM task_events GROUP BY event ORDER BY event"))
                .containsExactly(Map.of("event", "claimed", "n", 3000L, "tasks", 3000L),
                        Map.of("event", "succeeded", "n", 3000L, "tasks", 3000L));
    }

    @Test
    void renewalsDuringADrainNeitherDeadlockWithCompletionsNorRecordSpuriousLostLeases() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log");
        new TaskStore(db.database()).enqueueMany("default", "noop", Collections.nCopies(30_000, "{}"), 0, 5);
        Map<String, String> env = new HashMap<>();
        env.put("PGDISPATCH_HTTP_PORT", "off");
        // ticks every second, but timeouts long enough that a loaded machine's slow tick cannot make the
        // node look dead: this test is about deadlocks and false lease_lost events, not about timing
        env.put("TASK_LEASE_S", "120");
        env.put("TASK_RENEW_S", "1");
        env.put("TASK_STALE_S", "240");
        env.put("TASK_NODE_TIMEOUT_S", "120");
        DispatcherConfig cfg = DispatcherConfig.fromEnv(env).withDatabaseUrl(db.url()).withNode("node-renew", List.of("default"), 4);
        Dispatcher d = Dispatcher.builder(cfg).claimBatch(500).build().start();
        try {
            // renew ticks (every second) while completion batches are written
            for (int i = 0; i < 5 && db.count("tasks WHERE status = 'succeeded'") < 30_000; i++) {
                d.renewNow();
            }
            await().atMost(Duration.ofSeconds(120)).until(() -> db.count("tasks WHERE status = 'succeeded'") == 30_000);
        } finally {
            d.stop();
        }
        assertThat(db.rows("SELECT event, count(*) AS n FROM task_events GROUP BY event ORDER BY event"))
                .containsExactly(Map.of("event", "claimed", "n", 30_000L), Map.of("event", "succeeded", "n", 30_000L));
    }

    @Test
    void stopReleasesBufferedTasksThatNeverStartedWithoutChargingAnAttempt() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log");
        TaskStore store = new TaskStore(db.database());
        Gate gate = new Gate();
        Dispatcher d = Dispatcher.builder(config("node-buffer")).handler(gate).claimBatch(100).build().start();
        try {
            // short tasks first: the node learns its handlers take microseconds against a claim's milliseconds
            store.enqueueMany("default", "gate", Collections.nCopies(200, "{\"wait\":false}"), 0, 5);
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE status = 'succeeded'") == 200);
            store.enqueueMany("default", "gate", Collections.nCopies(300, "{\"wait\":true}"), 0, 5);
            // 4 workers block; the buffer holds more claimed tasks that have not started
            await().atMost(Duration.ofSeconds(30)).until(() -> gate.started.get() == 4
                    && db.count("tasks WHERE status = 'running'") > 4);
        } finally {
            d.stop();
            gate.open.countDown();
        }
        assertThat(gate.started.get()).isEqualTo(4);
        assertThat(db.count("tasks WHERE status = 'running'")).isZero();
        // every waiting task is pending again with no attempt charged, whether it ran (interrupted at the
        // drain deadline) or sat in the buffer
        assertThat(db.count("tasks WHERE payload->>'wait' = 'true' AND (status <> 'pending' OR attempts <> 0)")).isZero();
        long released = db.count("task_events WHERE event = 'released'");
        assertThat(released).isGreaterThan(4).isEqualTo(db.count("task_events WHERE event = 'claimed'") - 200);
    }
}

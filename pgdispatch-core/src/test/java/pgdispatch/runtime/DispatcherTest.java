package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * The lease runtime end to end: real dispatchers (each with its own pool) against a real database.
 * Timings are short (lease 4 s, renew 1 s, node timeout 2 s) and every wait is on a visible condition.
 */
class DispatcherTest {
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
        await().atMost(5, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName)
                .noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    private DispatcherConfig config(String node, int concurrency) {
        // off: the default would be the 2 s node timeout, short enough to cut statements on a loaded machine
        return db.config().withNode(node, List.of("default"), concurrency).withSocketTimeout(Duration.ZERO)
                .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(2))
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500));
    }

    private Dispatcher start(DispatcherConfig cfg, TaskHandler... handlers) throws InterruptedException {
        var b = Dispatcher.builder(cfg).retryPolicy(NO_DELAY);
        for (TaskHandler h : handlers) b.handler(h);
        Dispatcher d = b.build();
        started.add(d);
        return d.start();
    }

    private long enqueue(String kind, String payload) {
        return client.enqueue(TaskClient.Enqueue.of(kind, payload));
    }

    private String status(long id) {
        return (String) db.rows("SELECT status FROM tasks WHERE id = " + id).get(0).get("status");
    }

    private long events(long id, String event) {
        return db.count("task_events WHERE task_id = " + id + " AND event = '" + event + "'");
    }

    /** A handler from a lambda, with an optional lease and timeout. */
    record Handler(String kind, Body body, Duration lease, Duration timeout) implements TaskHandler {
        interface Body {
            Object run(TaskContext c) throws Exception;
        }

        static Handler of(String kind, Body body) {
            return new Handler(kind, body, null, null);
        }

        @Override
        public Object handle(TaskContext context) throws Exception {
            return body.run(context);
        }
    }

    @Test
    void runsEveryTaskExactlyOnceAcrossThreeNodes() throws Exception {
        Map<Long, AtomicInteger> runs = new ConcurrentHashMap<>();
        Handler count = Handler.of("count", c -> runs.computeIfAbsent(c.taskId(), k -> new AtomicInteger()).incrementAndGet());
        for (String n : List.of("node-a", "node-b", "node-c")) start(config(n, 8), count);
        // inserted once all three listen: the one NOTIFY wakes them together, and each node's first
        // claim takes only its 8 free slots (no claim-ahead before a handler time is measured), so the
        // nodes race for the same rows (inserted before the starts, the first node drained them alone)
        db.exec("INSERT INTO tasks (kind) SELECT 'count' FROM generate_series(1, 1500)");

        await().atMost(60, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") == 1500);
        assertThat(runs).hasSize(1500);
        assertThat(runs.values()).allMatch(n -> n.get() == 1);
        assertThat(db.count("task_events WHERE event = 'succeeded'")).isEqualTo(1500);
        assertThat(db.count("(SELECT task_id FROM task_events WHERE event = 'claimed' GROUP BY task_id HAVING count(*) > 1) x"))
                .isZero();
        assertThat(db.count("(SELECT DISTINCT owner_id FROM tasks) x")).as("work spread over the nodes").isGreaterThan(1);
    }

    @Test
    void killedNodesTasksRunOnAnotherNodeWithinTheNodeTimeout() throws Exception {
        CountDownLatch never = new CountDownLatch(1);
        Handler blockA = Handler.of("work", c -> {
            never.await();
            return null;
        });
        Dispatcher a = start(config("node-a", 4), blockA);
        List<Long> ids = new ArrayList<>();
        for (int i = 0; i < 4; i++) ids.add(enqueue("work", "{}"));
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'running' AND owner_id = 'node-a'") == 4);

        a.halt(); // a crash: nothing written, its rows stay RUNNING with 4 s leases
        start(config("node-b", 4), Handler.of("work", c -> "done by node-b"));

        await().atMost(20, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded' AND owner_id = 'node-b'") == 4);
        for (long id : ids) {
            assertThat(events(id, "succeeded")).isEqualTo(1);
            assertThat(db.rows("SELECT requeue_count FROM tasks WHERE id = " + id).get(0).get("requeue_count")).isEqualTo(1);
        }
    }

    @Test
    void checkpointSurvivesACrashAndIsHandedToTheNodeThatTakesOver() throws Exception {
        // issue 14: the next attempt learns who ran the task before, why that attempt ended and where it got to
        CountDownLatch never = new CountDownLatch(1);
        // node-a's lease is long: only its death (node timeout 2 s) can bring the task back this soon
        Dispatcher a = start(config("node-a", 1).withTimings(Duration.ofSeconds(60), Duration.ofSeconds(1),
                Duration.ofSeconds(120), Duration.ofSeconds(2)), Handler.of("import", c -> {
            c.heartbeat(Map.of("page", 3), "page 3 of 9");
            never.await();
            return null;
        }));
        long id = enqueue("import", "{}");
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE id = " + id + " AND progress IS NOT NULL") == 1);
        a.halt(); // a crash: nothing written; node-a's heartbeat stops

        java.util.concurrent.atomic.AtomicReference<pgdispatch.api.PreviousAttempt> seen = new java.util.concurrent.atomic.AtomicReference<>();
        start(config("node-b", 1), Handler.of("import", c -> {
            seen.set(c.previousAttempt().orElseThrow());
            return c.previousProgress().orElseThrow().get("page").asInt();
        }));

        await().atMost(20, TimeUnit.SECONDS).until(() -> "succeeded".equals(status(id)));
        pgdispatch.api.PreviousAttempt p = seen.get();
        assertThat(p.owner()).isEqualTo("node-a");
        assertThat(p.attempt()).isEqualTo(1);
        assertThat(p.ending()).isEqualTo(pgdispatch.api.PreviousAttempt.Ending.NODE_DIED);
        assertThat(p.reason()).startsWith("owner node node-a not seen since");
        assertThat(p.checkpoint()).hasValueSatisfying(cp -> assertThat(cp.get("page").asInt()).isEqualTo(3));
        assertThat(p.lastMessage()).isEqualTo("page 3 of 9");
        assertThat(p.ran()).isPositive();
        assertThat(db.rows("SELECT result::text AS r FROM tasks WHERE id = " + id).get(0)).containsEntry("r", "3");
    }

    @Test
    void restartedNodeRecoversWhatItsPreviousLifeLeftRunning() throws Exception {
        CountDownLatch never = new CountDownLatch(1);
        Dispatcher first = start(config("node-a", 3), Handler.of("work", c -> {
            never.await();
            return null;
        }));
        for (int i = 0; i < 3; i++) enqueue("work", "{}");
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'running'") == 3);
        first.halt();

        // leases are 600 s here so only startup recovery (not lease expiry) can bring them back quickly
        db.exec("UPDATE tasks SET lease_expires_at = now() + interval '600 seconds' WHERE status = 'running'");
        Dispatcher second = start(config("node-a", 3), Handler.of("work", c -> "second life"));

        assertThat(second.recovery().recovered()).isEqualTo(3);
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") == 3);
        assertThat(db.count("task_events WHERE event = 'recovered_on_startup'")).isEqualTo(3);
    }

    @Test
    void zombieCompletionIsRefusedAndTheNewOwnersResultIsKept() throws Exception {
        CountDownLatch resume = new CountDownLatch(1);
        AtomicBoolean zombieReturned = new AtomicBoolean();
        // node-a's renewer ticks every 5 min (first tick at a random point of that): its lease is expired by
        // hand below, as if node-a had been paused, and node-a notices nothing until its handler returns
        DispatcherConfig paused = config("node-a", 1)
                .withTimings(Duration.ofSeconds(600), Duration.ofSeconds(300), Duration.ofSeconds(900), Duration.ofSeconds(1000));
        start(paused, Handler.of("job", c -> {
            resume.await();
            zombieReturned.set(true);
            return Map.of("by", "node-a");
        }));
        long id = enqueue("job", "{}");
        await().atMost(10, TimeUnit.SECONDS).until(() -> "running".equals(status(id)));

        DispatcherConfig b = config("node-b", 1)
                .withTimings(Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(60), Duration.ofSeconds(180));
        start(b, Handler.of("job", c -> Map.of("by", "node-b")));
        // expired again on every poll: a renewal tick of node-a in between cannot keep the lease alive
        await().atMost(15, TimeUnit.SECONDS).until(() -> {
            db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = " + id
                    + " AND owner_id = 'node-a' AND status = 'running'");
            return "succeeded".equals(status(id));
        });

        resume.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> events(id, "completion_refused") == 1);
        assertThat(zombieReturned).isTrue();
        var row = db.rows("SELECT status, owner_id, result::text AS result, lease_token FROM tasks WHERE id = " + id).get(0);
        assertThat(row).containsEntry("status", "succeeded").containsEntry("owner_id", "node-b")
                .containsEntry("result", "{\"by\": \"node-b\"}").containsEntry("lease_token", 2L);
        assertThat(events(id, "succeeded")).isEqualTo(1);
        assertThat(db.rows("SELECT owner_id, lease_token FROM task_events WHERE task_id = " + id
                + " AND event = 'completion_refused'").get(0)).containsEntry("owner_id", "node-a").containsEntry("lease_token", 1L);
    }

    @Test
    void cancelOfARunningTaskReachesItsHandlerAtTheNextRenewal() throws Exception {
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicBoolean sawLeaseLost = new AtomicBoolean();
        CountDownLatch running = new CountDownLatch(1);
        Dispatcher a = start(config("node-a", 1), Handler.of("long", c -> {
            running.countDown();
            try {
                new CountDownLatch(1).await();
            } catch (InterruptedException e) {
                interrupted.set(true);
                sawLeaseLost.set(c.leaseLost());
                throw e;
            }
            return null;
        }));
        long id = enqueue("long", "{}");
        assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();

        assertThat(new TaskStore(db.database()).cancel(id, "no longer needed")).isTrue();
        a.renewNow();

        await().atMost(5, TimeUnit.SECONDS).untilTrue(interrupted);
        assertThat(sawLeaseLost).isTrue();
        await().atMost(5, TimeUnit.SECONDS).until(() -> a.held() == 0);
        assertThat(status(id)).isEqualTo("cancelled");
        assertThat(events(id, "lease_lost")).isEqualTo(1);
        assertThat(events(id, "succeeded") + events(id, "failed") + events(id, "retry_scheduled")).isZero();
    }

    @Test
    void handlerPastItsTimeoutIsInterruptedAndTheAttemptFails() throws Exception {
        Handler hung = new Handler("hung", c -> {
            new CountDownLatch(1).await();
            return null;
        }, null, Duration.ofMillis(300));
        start(config("node-a", 1), hung);
        long id = client.enqueue(TaskClient.Enqueue.of("hung", "{}").maxAttempts(1));

        await().atMost(10, TimeUnit.SECONDS).until(() -> "failed".equals(status(id)));
        assertThat((String) db.rows("SELECT last_error FROM tasks WHERE id = " + id).get(0).get("last_error"))
                .contains("timed out after 300 ms");
    }

    @Test
    void failingTaskIsRetriedThenFailedWithItsErrorRecorded() throws Exception {
        start(config("node-a", 2));
        long flaky = client.enqueue(TaskClient.Enqueue.of("fail", "{\"times\": 1}").maxAttempts(3));
        long doomed = client.enqueue(TaskClient.Enqueue.of("fail", "{}").maxAttempts(2));

        await().atMost(15, TimeUnit.SECONDS).until(() -> "succeeded".equals(status(flaky)) && "failed".equals(status(doomed)));
        assertThat(events(flaky, "retry_scheduled")).isEqualTo(1);
        assertThat(events(doomed, "retry_scheduled")).isEqualTo(1);
        assertThat(events(doomed, "failed")).isEqualTo(1);
        assertThat(db.rows("SELECT attempts, last_error FROM tasks WHERE id = " + doomed).get(0))
                .containsEntry("attempts", 2).hasEntrySatisfying("last_error", e -> assertThat((String) e).contains("attempt 2 fails"));
    }

    @Test
    void permanentFailureFailsAtOnceWhateverAttemptsRemain() throws Exception {
        start(config("node-a", 1), Handler.of("bad", c -> {
            throw new PermanentFailure("input can never work");
        }));
        long id = client.enqueue(TaskClient.Enqueue.of("bad", "{}").maxAttempts(10));
        await().atMost(10, TimeUnit.SECONDS).until(() -> "failed".equals(status(id)));
        assertThat(db.rows("SELECT attempts FROM tasks WHERE id = " + id).get(0)).containsEntry("attempts", 1);
    }

    @Test
    void heartbeatSavesACheckpointTheNextAttemptSees() throws Exception {
        start(config("node-a", 1), Handler.of("resumable", c -> {
            if (c.attempt() == 1) {
                assertThat(c.heartbeat(Map.of("step", 3), "halfway")).isTrue();
                throw new IllegalStateException("crashed halfway");
            }
            return Map.of("resumed_from", c.previousProgress().orElseThrow().get("step").asInt());
        }));
        long id = enqueue("resumable", "{}");
        await().atMost(10, TimeUnit.SECONDS).until(() -> "succeeded".equals(status(id)));
        assertThat(db.rows("SELECT result::text AS r FROM tasks WHERE id = " + id).get(0)).containsEntry("r", "{\"resumed_from\": 3}");
    }

    @Test
    void gracefulStopReleasesUnfinishedTasksWithoutChargingAnAttempt() throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        Dispatcher a = start(config("node-a", 1), Handler.of("long", c -> {
            running.countDown();
            new CountDownLatch(1).await();
            return null;
        }));
        long id = enqueue("long", "{}");
        assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();

        a.stop();

        var row = db.rows("SELECT status, attempts, owner_id FROM tasks WHERE id = " + id).get(0);
        assertThat(row).containsEntry("status", "pending").containsEntry("attempts", 0);
        assertThat(row.get("owner_id")).isNull();
        assertThat(events(id, "released")).isEqualTo(1);
        assertThat(db.count("dispatcher_nodes WHERE node_id = 'node-a' AND stopped_at IS NOT NULL")).isEqualTo(1);
    }

    @Test
    void newTaskStartsOnItsNotificationWithoutWaitingForThePoll() throws Exception {
        DispatcherConfig slowPoll = config("node-a", 1).withPollInterval(Duration.ofSeconds(120));
        start(slowPoll);
        // the first claim at start found nothing; the next poll is two minutes away
        long id = enqueue("noop", "{}");
        await().atMost(10, TimeUnit.SECONDS).until(() -> "succeeded".equals(status(id)));
    }

    @Test
    void perKindLeaseIsTheLeaseTheTaskIsClaimedWith() throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        start(config("node-a", 1), new Handler("long-lease", c -> {
            running.countDown();
            release.await();
            return null;
        }, Duration.ofSeconds(120), null));
        long id = enqueue("long-lease", "{}");
        assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();
        double left = ((Number) db.rows("SELECT extract(epoch FROM lease_expires_at - now())::float8 AS s FROM tasks WHERE id = "
                + id).get(0).get("s")).doubleValue();
        release.countDown();
        assertThat(left).isBetween(100.0, 120.0);
    }

    @Test
    void startingWithANodeIdThatALiveProcessHoldsIsRefused() throws Exception {
        long otherLivePid = ProcessHandle.current().parent().orElseThrow().pid();
        String host = java.net.InetAddress.getLocalHost().getHostName();
        db.exec("INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version) VALUES ('node-x', gen_random_uuid(), '"
                + host + "', " + otherLivePid + ", 'test')");

        assertThatThrownBy(() -> start(config("node-x", 1)))
                .isInstanceOf(Dispatcher.NodeIdInUseException.class)
                .hasMessageContaining("DISPATCHER_NODE_ID=node-x is in use by pid " + otherLivePid);

        Dispatcher forced = Dispatcher.builder(config("node-x", 1)).force(true).build();
        started.add(forced);
        forced.start();
        assertThat(forced.registered()).isTrue();
    }

    @Test
    void nodeIdLeftByAProcessThatIsGoneIsTakenOverAtOnce() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        String host = java.net.InetAddress.getLocalHost().getHostName();
        db.exec("INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version) VALUES ('node-y', gen_random_uuid(), '"
                + host + "', " + gone.pid() + ", 'test')");
        Dispatcher d = start(config("node-y", 1));
        assertThat(d.registered()).isTrue();
    }

    @Test
    void renewalExtendsEveryHeldLeaseInOneTick() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        Dispatcher a = start(config("node-a", 5), Handler.of("long", c -> {
            release.await();
            return null;
        }));
        for (int i = 0; i < 5; i++) enqueue("long", "{}");
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'running'") == 5);
        db.exec("UPDATE tasks SET lease_expires_at = now() + interval '1 second' WHERE status = 'running'");

        a.renewNow();

        assertThat(db.count("tasks WHERE status = 'running' AND lease_expires_at > now() + interval '3 seconds'")).isEqualTo(5);
        release.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") == 5);
    }
}

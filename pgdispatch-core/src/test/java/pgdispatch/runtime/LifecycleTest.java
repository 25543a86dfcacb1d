package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 11 item 3c: one lifecycle state machine for the dispatcher. A stop during start, a second stop
 * during the first's drain, a dispatcher built and never started: each used to leave something running
 * or open after stop() returned.
 */
class LifecycleTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final List<Dispatcher> built = new ArrayList<>();

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
    }

    @AfterEach
    void haltAll() {
        built.forEach(Dispatcher::halt);
        await().atMost(10, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName).noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    private Dispatcher build(Duration drain, TaskHandler... handlers) {
        DispatcherConfig cfg = db.config().withNode("node-l", List.of("default"), 2).withSocketTimeout(Duration.ZERO)
                .withTimings(Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(60), Duration.ofSeconds(20))
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(drain).withHttpPort(DispatcherConfig.HTTP_OFF);
        var b = Dispatcher.builder(cfg);
        for (TaskHandler h : handlers) b.handler(h);
        Dispatcher d = b.build();
        built.add(d);
        return d;
    }

    private static boolean threadRunning(String prefix) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.isAlive() && t.getName().startsWith(prefix));
    }

    @Test
    void aDispatcherBuiltAndNeverStartedClosesItsPoolOnStop() {
        Dispatcher d = build(Duration.ZERO);
        assertThat(d.database().pool().isClosed()).isFalse();

        d.stop();

        assertThat(d.database().pool().isClosed()).as("the pool the dispatcher opened").isTrue();
        assertThat(d.state()).isEqualTo(Dispatcher.State.STOPPED);
        assertThatThrownBy(d::start).isInstanceOf(IllegalStateException.class)
                .hasMessage("node node-l cannot start: it is stopped");
    }

    @Test
    void stopDuringStartReturnsOnlyOnceStartGaveUpAndNoClaimIsMade() throws Exception {
        // a live-looking holder of the node id on another host: start() waits for its heartbeat to age (~20 s)
        TaskRows.node(db, "node-l", Duration.ZERO);
        long id = new TaskClient(new TaskStore(db.database()), 1 << 20).enqueue(TaskClient.Enqueue.of("noop", "{}"));
        Dispatcher d = build(Duration.ZERO);
        CompletableFuture<Dispatcher> starting = new CompletableFuture<>();
        Thread.ofPlatform().name("test-start").start(() -> {
            try {
                starting.complete(d.start());
            } catch (Throwable e) {
                starting.completeExceptionally(e);
            }
        });
        await().atMost(10, TimeUnit.SECONDS).until(() -> d.state() == Dispatcher.State.STARTING);

        d.stop();

        assertThat(d.state()).isEqualTo(Dispatcher.State.STOPPED);
        assertThat(starting.get(5, TimeUnit.SECONDS)).as("start() gave up and returned, no exception").isSameAs(d);
        assertThat(threadRunning("pgdispatch-claimer")).isFalse();
        assertThat(d.database().pool().isClosed()).isTrue();
        assertThat(db.count("tasks WHERE id = " + id + " AND status = 'pending'")).isOne();
        assertThat(db.count("task_events WHERE event = 'claimed'")).isZero();
    }

    @Test
    void aSecondStopReturnsOnlyAfterTheFirstHasDrained() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch running = new CountDownLatch(1);
        Dispatcher d = build(Duration.ofSeconds(30), DispatcherTest.Handler.of("slow", c -> {
            running.countDown();
            release.await();
            return Map.of("done", true);
        })).start();
        long id = new TaskClient(new TaskStore(db.database()), 1 << 20).enqueue(TaskClient.Enqueue.of("slow", "{}"));
        assertThat(running.await(10, TimeUnit.SECONDS)).isTrue();

        // own threads, not the common pool (one thread on two cores: the release would wait for the stop)
        Thread first = Thread.ofPlatform().name("test-first-stop").start(d::stop);
        await().atMost(10, TimeUnit.SECONDS).until(() -> d.state() == Dispatcher.State.STOPPING);
        // the handler finishes a second after the second stop() was called; that stop() must not return before
        Thread stopper = Thread.currentThread();
        Thread.ofPlatform().name("test-release").start(() -> {
            // released only once the second stop() is parked waiting for the first (a condition, not a delay)
            await().atMost(10, TimeUnit.SECONDS).until(() -> stopper.getState() == Thread.State.WAITING
                    || stopper.getState() == Thread.State.TIMED_WAITING);
            release.countDown();
        });

        d.stop();

        // everything the first stop() does before it returns is done when the second returns
        assertThat(db.count("tasks WHERE id = " + id + " AND status = 'succeeded'")).isOne();
        assertThat(db.count("dispatcher_nodes WHERE node_id = 'node-l' AND stopped_at IS NOT NULL")).isOne();
        assertThat(d.state()).isEqualTo(Dispatcher.State.STOPPED);
        first.join(5000);
        assertThat(first.isAlive()).isFalse();
    }
}

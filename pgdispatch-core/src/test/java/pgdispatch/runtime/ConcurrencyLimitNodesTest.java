package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.LimitStore;
import pgdispatch.testing.TestDatabase;

/**
 * A limit set at run time on three live nodes (12 worker slots between them): from then on no more
 * than the limit of its tasks run at once across the cluster, counted by the handlers themselves, while
 * an unlimited kind keeps running beside it; a raised limit takes effect without a restart.
 */
class ConcurrencyLimitNodesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final List<Dispatcher> started = new ArrayList<>();

    @AfterEach
    void stopAll() {
        started.forEach(Dispatcher::halt);
        await().atMost(5, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName).noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    /** Kind 'report': counts the handlers running ({@code now}, the most at once in {@code max}) until released. */
    private static TaskHandler report(AtomicInteger now, AtomicInteger max, CountDownLatch release) {
        return new TaskHandler() {
            @Override
            public String kind() {
                return "report";
            }

            @Override
            public Object handle(TaskContext c) throws Exception {
                max.accumulateAndGet(now.incrementAndGet(), Math::max);
                try {
                    release.await(30, TimeUnit.SECONDS);
                } finally {
                    now.decrementAndGet();
                }
                return null;
            }
        };
    }

    @Test
    void threeNodesRunNoMoreThanTheLimitOfAKindAtOnce() throws Exception {
        AtomicInteger now = new AtomicInteger();
        AtomicInteger max = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        TaskHandler report = report(now, max, release);
        TaskHandler quick = new TaskHandler() {
            @Override
            public String kind() {
                return "quick";
            }

            @Override
            public Object handle(TaskContext c) {
                return null;
            }
        };
        for (String node : List.of("node-a", "node-b", "node-c")) {
            DispatcherConfig cfg = db.config().withNode(node, List.of("default"), 4)
                    .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500));
            Dispatcher d = Dispatcher.builder(cfg).handler(report).handler(quick).build();
            started.add(d);
            d.start();
        }
        LimitStore limits = new LimitStore(db.database().dataSource());
        limits.set(LimitStore.Scope.KIND, "report", 2, "test"); // the nodes run already: set at run time

        db.exec("INSERT INTO tasks (kind) SELECT 'report' FROM generate_series(1, 10)");
        db.exec("INSERT INTO tasks (kind) SELECT 'quick' FROM generate_series(1, 30)");
        try {
        await().atMost(20, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE kind = 'quick' AND status = 'succeeded'") == 30
                && now.get() == 2);
        } catch (RuntimeException e) {
            System.err.println("DEBUG now=" + now.get() + " " + db.rows("SELECT kind, status, count(*) FROM tasks GROUP BY 1,2"));
            throw e;
        }
        assertThat(db.count("tasks WHERE kind = 'report' AND status = 'running'")).isEqualTo(2);

        limits.set(LimitStore.Scope.KIND, "report", 4, "test");
        await().atMost(20, TimeUnit.SECONDS).until(() -> now.get() == 4);
        release.countDown();
        await().atMost(30, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") == 40);
        assertThat(max.get()).as("most report handlers running at once").isEqualTo(4);
    }

    /**
     * V13_5: an idle node reads the limit keys only on a ':limits' notification (or once a minute). A limit
     * set elsewhere covers a kind it had no key for, which its claim admits none of until it knows the key;
     * the notification makes the next claim read it, so the tasks run at once and within the limit.
     */
    @Test
    void aLimitSetElsewhereTakesEffectAtTheNextClaimAfterItsNotification() throws Exception {
        AtomicInteger now = new AtomicInteger();
        AtomicInteger max = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        TaskHandler report = report(now, max, release);
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, concurrency_limits");
        DispatcherConfig cfg = db.config().withNode("node-l", List.of("default"), 4)
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500));
        Dispatcher d = Dispatcher.builder(cfg).handler(report).build();
        started.add(d);
        d.start();
        await().atMost(10, TimeUnit.SECONDS).until(d::listening);
        long claims = d.metrics().registry().get("pgdispatch.claim").timer().count();
        await().atMost(10, TimeUnit.SECONDS).until(() -> d.metrics().registry().get("pgdispatch.claim").timer().count() >= claims + 2);

        LimitStore limits = new LimitStore(db.database().dataSource());
        limits.set(LimitStore.Scope.KIND, "report", 1, "cli:ops");
        db.exec("INSERT INTO tasks (kind) SELECT 'report' FROM generate_series(1, 3)");
        await().atMost(10, TimeUnit.SECONDS).until(() -> now.get() == 1);

        limits.set(LimitStore.Scope.KIND, "report", 3, "cli:ops");
        await().atMost(10, TimeUnit.SECONDS).until(() -> now.get() == 3);
        release.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") == 3);
        assertThat(max.get()).isEqualTo(3);
        limits.clear(LimitStore.Scope.KIND, "report");
    }
}

package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskClient.Enqueue;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Dependencies with live nodes: the dependencies of a task complete on two different nodes through the
 * real completion path, and the database's release wakes a third node that serves only the dependent's
 * queue. Every node polls every 30 s: only the release's NOTIFY explains a claim within seconds.
 */
class DependencyNodesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final List<Dispatcher> started = new ArrayList<>();
    private final Map<String, CountDownLatch> gates = new ConcurrentHashMap<>();

    @AfterEach
    void stopAll() {
        gates.values().forEach(CountDownLatch::countDown);
        started.forEach(Dispatcher::halt);
        await().atMost(5, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName).noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    private final TaskHandler step = new TaskHandler() {
        @Override
        public String kind() {
            return "step";
        }

        @Override
        public Object handle(TaskContext c) throws Exception {
            if (c.payload().has("gate")) gates.computeIfAbsent(c.payload().get("gate").asText(), g -> new CountDownLatch(1)).await();
            if (c.payload().has("fail")) throw new PermanentFailure("step failed on purpose");
            return null;
        }
    };

    private void node(String id, String... queues) throws InterruptedException {
        DispatcherConfig cfg = db.config().withNode(id, List.of(queues), 4)
                .withPollInterval(Duration.ofSeconds(30)).withDrainTimeout(Duration.ofMillis(500));
        Dispatcher d = Dispatcher.builder(cfg).handler(step).build();
        started.add(d);
        d.start();
    }

    @Test
    void dependenciesCompletingOnTwoNodesReleaseTheTaskAndItsNodeIsWokenAtOnce() throws Exception {
        node("node-a", "qa");
        node("node-b", "qb");
        node("node-c", "qx");
        await().atMost(10, TimeUnit.SECONDS).until(() -> started.stream().allMatch(Dispatcher::listening));
        TaskClient client = new TaskClient(new TaskStore(db.database()), 1 << 20);

        long a = client.enqueue(Enqueue.of("step", "{\"gate\": \"a\"}").queue("qa"));
        long b = client.enqueue(Enqueue.of("step", "{\"gate\": \"b\"}").queue("qb"));
        long x = client.enqueue(Enqueue.of("step", "{}").queue("qx").dependsOn(a, b));
        long failing = client.enqueue(Enqueue.of("step", "{\"gate\": \"f\", \"fail\": true}").queue("qa"));
        long cancelled = client.enqueue(Enqueue.of("step", "{}").queue("qx").dependsOn(a, failing));
        long anyway = client.enqueue(Enqueue.of("step", "{}").queue("qx").dependsOn(failing).runAnyway());
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(a).equals("running") && status(b).equals("running")
                && status(failing).equals("running"));
        assertThat(status(x)).isEqualTo("waiting");

        gates.computeIfAbsent("f", g -> new CountDownLatch(1)).countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(failing).equals("failed"));
        assertThat(status(cancelled)).isEqualTo("cancelled");
        assertThat(db.rows("SELECT last_error FROM tasks WHERE id = " + cancelled).get(0))
                .containsEntry("last_error", "dependency " + failing + " ended failed");
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(anyway).equals("succeeded"));

        gates.computeIfAbsent("a", g -> new CountDownLatch(1)).countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(a).equals("succeeded"));
        assertThat(status(x)).isEqualTo("waiting");
        gates.computeIfAbsent("b", g -> new CountDownLatch(1)).countDown();
        // node-c polls every 30 s and had nothing to do: the release's wake-up is what starts x
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(x).equals("succeeded"));

        assertThat(db.rows("SELECT t.id, e.owner_id FROM task_events e JOIN tasks t ON t.id = e.task_id"
                + " WHERE e.event = 'succeeded' AND t.id IN (" + a + ", " + b + ", " + x + ") ORDER BY t.id"))
                .extracting(r -> r.get("owner_id")).containsExactly("node-a", "node-b", "node-c");
        assertThat(db.rows("SELECT event FROM task_events WHERE task_id = " + x + " ORDER BY id"))
                .extracting(r -> r.get("event")).containsExactly("dependencies_resolved", "claimed", "succeeded");
    }

    private static String status(long id) {
        return (String) db.rows("SELECT status FROM tasks WHERE id = " + id).get(0).get("status");
    }
}

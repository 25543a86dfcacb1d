package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.QueueStore;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Pause and resume with two live nodes: neither claims from the paused queue while both go on with
 * another one, the task running at the pause finishes normally, and a resume wakes the nodes at once
 * (their poll interval is 30 s: only the resume's NOTIFY explains a prompt claim).
 */
class QueuePauseNodesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final List<Dispatcher> started = new ArrayList<>();

    @AfterEach
    void stopAll() {
        started.forEach(Dispatcher::halt);
        await().atMost(5, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName).noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    @Test
    void twoNodesStopClaimingAPausedQueueAndResumeAtTheWakeUp() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        TaskHandler work = new TaskHandler() {
            @Override
            public String kind() {
                return "work";
            }

            @Override
            public Object handle(TaskContext c) throws Exception {
                if (c.payload().has("block")) release.await();
                return null;
            }
        };
        for (String node : List.of("node-a", "node-b")) {
            DispatcherConfig cfg = db.config().withNode(node, List.of("mail", "default"), 4)
                    .withPollInterval(Duration.ofSeconds(30)).withDrainTimeout(Duration.ofMillis(500));
            Dispatcher d = Dispatcher.builder(cfg).handler(work).build();
            started.add(d);
            d.start();
        }
        await().atMost(10, TimeUnit.SECONDS).until(() -> started.stream().allMatch(Dispatcher::listening));
        TaskClient client = new TaskClient(new TaskStore(db.database()), 1 << 20);
        long blocking = client.enqueue(TaskClient.Enqueue.of("work", "{\"block\": true}").queue("mail"));
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(blocking).equals("running"));

        new QueueStore(db.database().dataSource()).pause("mail", "test", "maintenance");
        List<Long> mail = new ArrayList<>();
        for (int i = 0; i < 10; i++) mail.add(client.enqueue(TaskClient.Enqueue.of("work", "{}").queue("mail")));
        List<Long> other = new ArrayList<>();
        for (int i = 0; i < 10; i++) other.add(client.enqueue(TaskClient.Enqueue.of("work", "{}")));

        // the nodes claimed after the pause (the other queue's tasks, inserted after the mail ones, ran)
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE queue = 'default' AND status = 'succeeded'") == 10);
        release.countDown();
        await().atMost(10, TimeUnit.SECONDS).until(() -> status(blocking).equals("succeeded"));
        assertThat(db.count("tasks WHERE queue = 'mail' AND status = 'pending'")).isEqualTo(10);
        assertThat(db.count("task_events e JOIN tasks t ON t.id = e.task_id WHERE t.queue = 'mail' AND t.id <> " + blocking))
                .as("no claim of a paused queue's task").isZero();

        new QueueStore(db.database().dataSource()).resume("mail", "test", null);
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE queue = 'mail' AND status = 'succeeded'") == 11);
    }

    private static String status(long id) {
        return (String) db.rows("SELECT status FROM tasks WHERE id = " + id).get(0).get("status");
    }
}

package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.chaos.ChaosProxy;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.NewTask;
import pgdispatch.store.Outcome;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * The database disappears under a running node (its connections cut by a {@link ChaosProxy}, new
 * ones refused): handlers keep running, the node keeps trying, and on reconnect it reconciles with
 * what the database says. It never assumes a lease it could not renew: when the outage outlasted the
 * lease and another node took the task, the handler is told and its result is discarded.
 */
class DatabaseOutageTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final TaskStore store = new TaskStore(db.database());
    private ChaosProxy proxy;
    private Dispatcher node;
    private final Gate gate = new Gate();

    /** A handler that runs until released, and records how it ended. */
    static final class Gate implements TaskHandler {
        final CountDownLatch started = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        volatile boolean interrupted;
        volatile boolean leaseLostWhenInterrupted;

        @Override
        public String kind() {
            return "gate";
        }

        @Override
        public Object handle(TaskContext ctx) throws InterruptedException {
            started.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                interrupted = true;
                leaseLostWhenInterrupted = ctx.leaseLost();
                throw e;
            }
            return Map.of("done", true);
        }
    }

    @BeforeEach
    void startNodeBehindAProxy() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        DatabaseUrl direct = db.url();
        proxy = new ChaosProxy("outage-test", direct.host(), direct.port());
        DatabaseUrl viaProxy = new DatabaseUrl("127.0.0.1", proxy.port(), direct.database(), direct.user(), direct.password(),
                direct.params());
        DispatcherConfig cfg = db.config().withDatabaseUrl(viaProxy).withHttpPort(DispatcherConfig.HTTP_OFF)
                .withSocketTimeout(Duration.ofSeconds(10)) // at most TASK_NODE_TIMEOUT_S
                .withTimings(Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(60), Duration.ofSeconds(20));
        node = Dispatcher.builder(cfg).handler(gate).build().start();
    }

    @AfterEach
    void stop() {
        gate.release.countDown();
        proxy.set(ChaosProxy.Mode.PASS);
        node.stop();
        proxy.close();
    }

    private long runGateTask() throws InterruptedException {
        long id = store.enqueue(new NewTask("default", "gate", "{}", 0, null, 5, null));
        assertThat(gate.started.await(20, TimeUnit.SECONDS)).as("handler started").isTrue();
        return id;
    }

    private double leaseExpiry(long id) {
        return (Double) db.rows("SELECT extract(epoch FROM lease_expires_at)::float8 AS e FROM tasks WHERE id = " + id).get(0).get("e");
    }

    private List<String> events(long id) {
        return db.rows("SELECT event || ' ' || coalesce(owner_id, '-') || ' ' || coalesce(lease_token::text, '-') AS e"
                + " FROM task_events WHERE task_id = " + id + " ORDER BY id").stream().map(r -> (String) r.get("e")).toList();
    }

    @Test
    void handlerKeepsRunningThroughAnOutageAndTheNodeRenewsItsLeaseOnReconnect() throws Exception {
        long id = runGateTask();
        double before = leaseExpiry(id);
        long attempts = proxy.acceptedConnections();

        proxy.set(ChaosProxy.Mode.DROP);
        // the node notices and keeps trying to reconnect (each try reaches the proxy and is refused)
        await().atMost(Duration.ofSeconds(20)).until(() -> proxy.acceptedConnections() >= attempts + 2);
        assertThat(gate.interrupted).as("handler interrupted by the outage").isFalse();
        assertThat(node.held()).isEqualTo(1);

        proxy.set(ChaosProxy.Mode.PASS);
        await().atMost(Duration.ofSeconds(20)).until(() -> leaseExpiry(id) > before);
        gate.release.countDown();

        await().atMost(Duration.ofSeconds(20)).until(() -> db.count("tasks WHERE id = " + id + " AND status = 'succeeded'") == 1);
        assertThat(gate.interrupted).isFalse();
        assertThat(events(id)).containsExactly("claimed node-a 1", "succeeded node-a 1");
    }

    @Test
    void outageLongerThanTheLeaseEndsWithTheHandlerToldAndItsResultDiscarded() throws Exception {
        long id = runGateTask();
        proxy.set(ChaosProxy.Mode.DROP);

        // meanwhile the lease runs out (moved into the past rather than waited for) and node-b takes over
        db.exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = " + id);
        List<ClaimedTask> taken = store.claimDue(new ClaimRequest("node-b", List.of("default"),
                Map.of("gate", Duration.ofSeconds(30)), 1, 3));
        assertThat(taken).singleElement().satisfies(t -> assertThat(t.previousOwner()).isEqualTo("node-a"));

        proxy.set(ChaosProxy.Mode.PASS);
        await().atMost(Duration.ofSeconds(30)).until(() -> gate.interrupted);
        assertThat(gate.leaseLostWhenInterrupted).as("TaskContext.leaseLost() when interrupted").isTrue();
        await().atMost(Duration.ofSeconds(10)).until(() -> node.held() == 0);
        assertThat(node.registered()).as("the node itself carries on").isTrue();

        assertThat(store.completeIfOwned("node-b", List.of(new Outcome.Success(id, taken.get(0).leaseToken(), null))))
                .containsKey(id);
        assertThat(events(id)).containsExactly("claimed node-a 1", "claimed node-b 2", "lease_lost node-a 1", "succeeded node-b 2");
        assertThat(db.count("tasks WHERE id = " + id + " AND status = 'succeeded' AND owner_id = 'node-b'")).isOne();
    }
}

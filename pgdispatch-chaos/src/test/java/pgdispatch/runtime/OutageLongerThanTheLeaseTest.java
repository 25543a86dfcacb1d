package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.chaos.ChaosProxy;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.NewTask;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 11 item 5: a node never requeues its own live task. One node, its database cut (a
 * {@link ChaosProxy} drops every connection) for longer than the lease, the stale bound and the node
 * timeout: its running task looks expired, stale and abandoned. On reconnect the node's own reaper and
 * its claims' take-over would requeue it (observed: requeued, lease_lost, the handler interrupted,
 * attempt 2); the node must renew what it holds first, so the task finishes in its first attempt.
 */
class OutageLongerThanTheLeaseTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final DatabaseOutageTest.Gate gate = new DatabaseOutageTest.Gate();
    private ChaosProxy proxy;
    private Dispatcher node;

    @AfterEach
    void stop() {
        gate.release.countDown();
        if (proxy != null) proxy.set(ChaosProxy.Mode.PASS);
        if (node != null) node.stop();
        if (proxy != null) proxy.close();
    }

    @Test
    void theNodeRenewsItsOwnTaskOnReconnectInsteadOfRequeueingIt() throws Exception {
        DatabaseUrl direct = db.url();
        proxy = new ChaosProxy("own-lease", direct.host(), direct.port());
        DatabaseUrl viaProxy = new DatabaseUrl("127.0.0.1", proxy.port(), direct.database(), direct.user(), direct.password(),
                direct.params());
        // lease 3 s, stale after 4 s without a heartbeat, node dead after 2 s: an outage of 5 s outlasts all three
        DispatcherConfig cfg = db.config().withDatabaseUrl(viaProxy).withHttpPort(DispatcherConfig.HTTP_OFF)
                .withSocketTimeout(Duration.ZERO)
                .withTimings(Duration.ofSeconds(3), Duration.ofSeconds(1), Duration.ofSeconds(4), Duration.ofSeconds(2))
                .withPollInterval(Duration.ofMillis(200));
        node = Dispatcher.builder(cfg).handler(gate).build().start();
        long id = new TaskStore(db.database()).enqueue(new NewTask("default", "gate", "{}", 0, null, 5, null));
        assertThat(gate.started.await(20, TimeUnit.SECONDS)).as("handler started").isTrue();

        proxy.set(ChaosProxy.Mode.DROP);
        // by the database's clock (read directly, not through the proxy): lease expired, heartbeat stale, node silent
        await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks t JOIN dispatcher_nodes n ON n.node_id = t.owner_id"
                + " WHERE t.id = " + id + " AND t.status = 'running' AND t.lease_expires_at < now() - interval '1 second'"
                + " AND t.last_heartbeat_at < now() - interval '5 seconds' AND n.last_seen_at < now() - interval '4 seconds'") == 1);
        proxy.set(ChaosProxy.Mode.PASS);

        // the node is back and ready: every part completed a cycle since (claims, renewals; the reaper
        // ticks with the renewer), and the task's lease is in the future again
        await().atMost(Duration.ofSeconds(30)).until(() -> node.health().ready() && db.count("tasks WHERE id = " + id
                + " AND lease_expires_at > now()") == 1);
        gate.release.countDown();

        await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE id = " + id + " AND status = 'succeeded'") == 1);
        assertThat(gate.interrupted).as("handler interrupted").isFalse();
        assertThat(db.rows("SELECT event || ' ' || owner_id || ' ' || lease_token AS e FROM task_events WHERE task_id = " + id
                + " ORDER BY id").stream().map(r -> (String) r.get("e")).toList())
                .containsExactly("claimed node-a 1", "succeeded node-a 1");
        assertThat(db.rows("SELECT attempts, requeue_count FROM tasks WHERE id = " + id).get(0))
                .containsEntry("attempts", 1).containsEntry("requeue_count", 0);
        assertThat(node.registered()).isTrue();
    }
}

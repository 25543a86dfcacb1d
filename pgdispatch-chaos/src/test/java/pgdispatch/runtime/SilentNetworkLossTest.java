package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
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
 * The network drops a node's connections without a word (no FIN, no RST: a server host that vanished,
 * an expired NAT entry), simulated by a {@link ChaosProxy} in BLACKHOLE mode. A connection that only
 * reads, like the LISTEN one, would look idle forever; with PGDISPATCH_SOCKET_TIMEOUT_S its probe
 * meets the timeout, the node says it is no longer listening (and polls), and it listens again once
 * the network is back.
 */
class SilentNetworkLossTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private ChaosProxy proxy;
    private Dispatcher node;

    @AfterEach
    void stop() {
        if (proxy != null) proxy.set(ChaosProxy.Mode.PASS);
        if (node != null) node.stop();
        if (proxy != null) proxy.close();
    }

    @Test
    void aSilentlyDeadListenConnectionIsNoticedAndReplaced() throws Exception {
        DatabaseUrl direct = db.url();
        proxy = new ChaosProxy("silent-loss", direct.host(), direct.port());
        DatabaseUrl viaProxy = new DatabaseUrl("127.0.0.1", proxy.port(), direct.database(), direct.user(), direct.password(),
                direct.params());
        DispatcherConfig cfg = db.config().withDatabaseUrl(viaProxy).withHttpPort(DispatcherConfig.HTTP_OFF)
                .withSocketTimeout(Duration.ofSeconds(5)) // the shortest the configuration allows
                .withTimings(Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(60), Duration.ofSeconds(20));
        node = Dispatcher.builder(cfg).build().start();
        await().atMost(Duration.ofSeconds(10)).until(node::listening);

        proxy.set(ChaosProxy.Mode.BLACKHOLE);
        // a probe every 5 s, answered never: the read gives up after 5 s
        await().atMost(Duration.ofSeconds(20)).until(() -> !node.listening());

        proxy.set(ChaosProxy.Mode.PASS);
        await().atMost(Duration.ofSeconds(30)).until(node::listening);
        // and wake-ups work again: a task inserted now runs long before the (4 s) idle poll would find it
        new TaskStore(db.database()).enqueue(new NewTask("default", "noop", "{}", 0, null, 5, null));
        await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE status = 'succeeded'") == 1);
        assertThat(node.registered()).isTrue();
    }
}

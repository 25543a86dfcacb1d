package pgdispatch.chaos;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.function.Consumer;
import javax.sql.DataSource;

/**
 * The {@code stalled} invariant (issue 11), watched while the run goes on: a node must not report ready
 * on {@code /health/ready} while it holds a task it has neither completed nor released within its
 * bound. Every second each node that is up is asked. Once a node has answered ready on every probe
 * for {@link #READY_FOR} (a node back from a cut or a pause gets that long to write what it finished
 * meanwhile), a task it holds counts as stalled when either
 * <ul>
 *   <li>the node wrote no outcome at all (no succeeded, failed, retry_scheduled, released or
 *       completion_refused event) for {@link #READY_FOR} while it held a task claimed more than that
 *       ago: a node that stopped working (a stuck completer, every slot leaked); or</li>
 *   <li>the task has been held under the same lease token for more than {@link #HELD_BOUND}: a single
 *       task leaked while the rest flows. The bound covers the longest task of the workload (a 9 s
 *       sleep; a faulty handler's timeout plus its abandonment grace) and the wait of a task claimed
 *       ahead into the node's local buffer behind them during a backlog (up to 32 s measured in a
 *       50,000-task run with 2 cores for everything).</li>
 * </ul>
 */
final class StallWatch {
    static final Duration HELD_BOUND = Duration.ofSeconds(120);
    static final Duration READY_FOR = Duration.ofSeconds(15);

    private final List<NodeProcess> nodes;
    private final Map<String, Integer> ports;
    private final DataSource ds;
    private final Consumer<String> log;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(1)).build();
    private final Map<String, Long> readySinceMs = new HashMap<>();
    private final Set<String> stalled = new ConcurrentSkipListSet<>();
    private volatile boolean stopped;
    private volatile long probes;
    private volatile long readyAnswers;
    private final Map<String, Long> notReady = new java.util.concurrent.ConcurrentSkipListMap<>();
    private Thread thread;

    StallWatch(List<NodeProcess> nodes, Map<String, Integer> ports, DataSource ds, Consumer<String> log) {
        this.nodes = nodes;
        this.ports = ports;
        this.ds = ds;
        this.log = log;
    }

    void start() {
        thread = Thread.ofPlatform().daemon().name("chaos-stall-watch").start(this::loop);
    }

    void stop() throws InterruptedException {
        stopped = true;
        if (thread != null) thread.join(10_000);
    }

    /** Distinct (task, lease token) pairs held past the bound by a node that kept saying ready. */
    long stalled() {
        return stalled.size();
    }

    String stats() {
        return "probes=" + probes + " ready=" + readyAnswers + " not_ready=" + notReady + " stalled=" + new TreeSet<>(stalled);
    }

    private void loop() {
        while (!stopped) {
            long now = System.currentTimeMillis();
            for (NodeProcess n : nodes) {
                Integer port = ports.get(n.nodeId);
                if (port == null) continue;
                boolean ready = n.state() == NodeProcess.State.UP && n.alive() ? ready(port) : notReady("down");
                probes++;
                if (!ready) {
                    readySinceMs.remove(n.nodeId);
                    continue;
                }
                readyAnswers++;
                long since = readySinceMs.computeIfAbsent(n.nodeId, k -> now);
                if (now - since < READY_FOR.toMillis()) continue;
                try {
                    for (String held : heldPastBound(n.nodeId)) {
                        if (stalled.add(held)) log.accept("STALLED: " + n.nodeId + " ready for " + (now - since) / 1000
                                + "s while holding " + held + " past its bound");
                    }
                } catch (SQLException e) {
                    // the driver's own connection may meet a server restart: ask again next second
                }
            }
            try {
                Thread.sleep(1000); // the probe interval
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private boolean ready(int port) {
        try {
            HttpResponse<Void> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health/ready"))
                    .timeout(Duration.ofSeconds(2)).GET().build(), HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200 || notReady(Integer.toString(r.statusCode()));
        } catch (Exception e) {
            if (e instanceof InterruptedException) Thread.currentThread().interrupt();
            return notReady(e.getClass().getSimpleName()); // not answering is not "ready"
        }
    }

    /** Counts a probe that did not find the node ready, by why; always false. */
    private boolean notReady(String why) {
        notReady.merge(why, 1L, Long::sum);
        return false;
    }

    private List<String> heldPastBound(String node) throws SQLException {
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement("""
                WITH quiet AS (  -- evaluated once: did the node write no outcome lately?
                    SELECT NOT EXISTS (SELECT 1 FROM task_events e
                                        WHERE e.at > now() - ? * interval '1 second' AND e.owner_id = ?
                                          AND e.event IN ('succeeded', 'failed', 'retry_scheduled', 'released',
                                                          'completion_refused')) AS q)
                SELECT t.id || '/' || t.lease_token || ' (' || t.kind || ')' FROM tasks t, quiet
                 WHERE t.status = 'running' AND t.owner_id = ?
                   AND (t.started_at < now() - ? * interval '1 second'
                        OR quiet.q AND t.started_at < now() - ? * interval '1 second')""")) {
            ps.setLong(1, READY_FOR.toSeconds());
            ps.setString(2, node);
            ps.setString(3, node);
            ps.setLong(4, HELD_BOUND.toSeconds());
            ps.setLong(5, READY_FOR.toSeconds());
            try (ResultSet rs = ps.executeQuery()) {
                List<String> out = new java.util.ArrayList<>();
                while (rs.next()) out.add(rs.getString(1));
                return out;
            }
        }
    }
}

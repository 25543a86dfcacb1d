package pgdispatch.chaos;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import javax.sql.DataSource;

/**
 * The faults of a chaos run, chosen at random: kill -9 and restart under the same node id, SIGTERM and
 * restart, SIGSTOP past the lease (a zombie) or just short of it, a proxy drop/stall/blackhole, {@code pg_terminate_backend} of a
 * node's sessions, a restart of the private cluster. The fault happens on the calling thread (so the
 * next pick sees the node's new state); its sequel (restart, resume, heal) runs on a fault thread and
 * is cut short by {@link #stop()}.
 */
final class FaultInjector {
    private final List<NodeProcess> nodes;
    private final Random random;
    private final PrivateCluster cluster;
    private final ReentrantLock serverRestart;
    private final DataSource ds;
    private final String database;
    private final List<String> unexpectedExits;
    private final Consumer<String> log;
    private final ExecutorService faults = Executors.newCachedThreadPool(Thread.ofPlatform().daemon().name("chaos-fault-", 1).factory());
    private final Map<String, AtomicInteger> counts = Collections.synchronizedMap(new TreeMap<>());
    private volatile boolean healing;

    /**
     * {@code cluster} null: no server restarts. {@code serverRestart} is held while the server restarts
     * (the workload does not insert meanwhile); {@code ds} reaches the chaos database directly.
     */
    FaultInjector(List<NodeProcess> nodes, Random random, PrivateCluster cluster, ReentrantLock serverRestart, DataSource ds,
                  String database, List<String> unexpectedExits, Consumer<String> log) {
        this.nodes = nodes;
        this.random = random;
        this.cluster = cluster;
        this.serverRestart = serverRestart;
        this.ds = ds;
        this.database = database;
        this.unexpectedExits = unexpectedExits;
        this.log = log;
    }

    /** Ends every fault now (durations cut short) and waits for the fault threads. */
    void stop() throws InterruptedException {
        healing = true;
        faults.shutdown();
        if (!faults.awaitTermination(60, TimeUnit.SECONDS)) log.accept("fault threads still busy after 60s");
    }

    /** At exit: no fault thread may act any more. */
    void halt() {
        healing = true;
        faults.shutdownNow();
    }

    long count(String key) {
        AtomicInteger c = counts.get(key);
        return c == null ? 0 : c.get();
    }

    Map<String, AtomicInteger> counts() {
        return counts;
    }

    private void count(String key, int n) {
        counts.computeIfAbsent(key, k -> new AtomicInteger()).addAndGet(n);
    }

    private void log(String fmt, Object... args) {
        log.accept(String.format(Locale.ROOT, fmt, args));
    }

    private enum Fault { KILL, TERM, PAUSE, DROP, STALL, BLACKHOLE, TERMINATE_BACKENDS, PG_RESTART }

    /** Injects one fault at random every 0.3-1.8 s for {@code seconds}; what follows each (restart, heal) runs on. */
    void run(int seconds) throws InterruptedException {
        long until = System.currentTimeMillis() + seconds * 1000L;
        Map<Fault, Integer> weights = new java.util.LinkedHashMap<>();
        weights.put(Fault.KILL, 20);
        weights.put(Fault.TERM, 10);
        weights.put(Fault.PAUSE, 10);
        weights.put(Fault.DROP, 15);
        weights.put(Fault.STALL, 12);
        weights.put(Fault.BLACKHOLE, 10);
        weights.put(Fault.TERMINATE_BACKENDS, 15);
        if (cluster != null) weights.put(Fault.PG_RESTART, 4);
        int total = weights.values().stream().mapToInt(Integer::intValue).sum();
        long started = System.currentTimeMillis();
        while (System.currentTimeMillis() < until) {
            restartExited();
            int pick = random.nextInt(total);
            Fault f = null;
            for (var e : weights.entrySet()) {
                pick -= e.getValue();
                if (pick < 0) {
                    f = e.getKey();
                    break;
                }
            }
            // past a third of the window, a run that has not yet shown a take-over, a refused renewal or a
            // refused zombie completion gets pauses until it has: the checker requires each, and a random
            // pick can miss them (CI once drew five zombies of idle nodes and no short pause at all)
            Steer steer = Steer.NONE;
            if (System.currentTimeMillis() - started > (until - started) / 3
                    && nodes.stream().noneMatch(x -> x.state() == NodeProcess.State.PAUSED)) {
                steer = missingEffect();
                if (steer != Steer.NONE) f = Fault.PAUSE;
            }
            steered = steer;
            inject(f);
            Thread.sleep(300 + random.nextInt(1500)); // the fault rate: one every 0.3-1.8 s
        }
    }

    private void inject(Fault f) {
        List<NodeProcess> up = nodes.stream().filter(n -> n.state() == NodeProcess.State.UP).toList();
        if (up.isEmpty()) return;
        NodeProcess n = up.get(random.nextInt(up.size()));
        boolean processFault = f == Fault.KILL || f == Fault.TERM || f == Fault.PAUSE;
        if (processFault && up.size() < 2) return; // keep one node working so the run makes progress
        long restartDelay = random.nextInt(2000);
        // the process fault itself happens here, in the fault loop, so no later pick sees the node as UP;
        // what follows it (restart, resume) runs on a fault thread
        try {
            switch (f) {
                case KILL -> {
                    n.kill();
                    count("kills", 1);
                    async("restart " + n.nodeId, () -> {
                        pause(restartDelay);
                        n.start();
                    });
                }
                case TERM -> {
                    n.terminate();
                    count("stops", 1);
                    async("restart " + n.nodeId, () -> {
                        if (!n.awaitExit((ChaosRun.DRAIN_S + 20) * 1000L)) log("%s did not exit within %ds of SIGTERM; killed", n.nodeId, ChaosRun.DRAIN_S + 20);
                        pause(restartDelay / 2);
                        n.start();
                    });
                }
                case PAUSE -> {
                    // a short pause needs the first node awake (its reaper requeues the paused node's tasks)
                    // and another node to pause: else it is a zombie pause
                    // the two kinds alternate, and each pauses the node holding the most live leases: a
                    // paused idle node shows nothing
                    NodeProcess first = nodes.get(0);
                    List<NodeProcess> others = up.stream().filter(x -> x != first).toList();
                    boolean shortPause = switch (steered) {
                        case TAKEOVER -> false;
                        case REFUSAL -> true;
                        default -> count("short_pauses") <= count("zombies");
                    } && first.state() == NodeProcess.State.UP && !others.isEmpty();
                    // a take-over needs the first node silent past its leases: the others' reapers wait
                    // longer than a lease, while the first node's reaper would requeue first
                    NodeProcess target = steered == Steer.TAKEOVER && first.state() == NodeProcess.State.UP ? first
                            : busiest(shortPause ? others : up, n);
                    target.pause();
                    long ms;
                    if (!shortPause) {
                        count("zombies", 1);
                        ms = (ChaosRun.LEASE_S + 1) * 1000L + random.nextInt(4000); // longer than its lease: it wakes up a zombie
                    } else {
                        // longer than the first node's node timeout, shorter than the lease: that node's reaper
                        // requeues the paused node's tasks while their leases run, and the node, resumed, is
                        // refused at its next renewal (lease_lost)
                        count("short_pauses", 1);
                        ms = (ChaosRun.FIRST_NODE_TIMEOUT_S + 1) * 1000L + random.nextInt(1000);
                    }
                    long duration = ms;
                    async("resume " + target.nodeId, () -> {
                        pause(duration);
                        target.resume();
                    });
                }
                default -> injectNetworkFault(f, n);
            }
        } catch (IOException | InterruptedException e) {
            log("fault %s on %s failed: %s", f, n.nodeId, e);
        }
    }

    private void injectNetworkFault(Fault f, NodeProcess n) {
        switch (f) {
            case DROP, STALL, BLACKHOLE -> {
                if (n.proxy.mode() != ChaosProxy.Mode.PASS) return;
                ChaosProxy.Mode mode = ChaosProxy.Mode.valueOf(f.name());
                long ms = switch (f) {
                    case DROP -> 200 + random.nextInt(2800);
                    case STALL -> 1000 + random.nextInt(9000);
                    default -> 2000 + random.nextInt(8000);
                };
                n.proxy.set(mode);
                count("cuts", 1);
                count("cuts." + f.name().toLowerCase(Locale.ROOT), 1);
                async(f + " " + n.nodeId, () -> {
                    pause(ms);
                    n.proxy.set(ChaosProxy.Mode.PASS);
                });
            }
            case TERMINATE_BACKENDS -> async("terminate " + n.nodeId, () -> {
                int k = terminateBackends(n, 1 + random.nextInt(3));
                if (k > 0) {
                    count("cuts", 1);
                    count("cuts.terminated_backends", k);
                }
            });
            case PG_RESTART -> async("pg restart", () -> {
                serverRestart.lock();
                try {
                    cluster.restart();
                    count("pg_restarts", 1);
                } finally {
                    serverRestart.unlock();
                }
            });
            default -> throw new IllegalArgumentException(f.name());
        }
    }

    /**
     * Of {@code candidates}, the node holding the most running tasks whose leases have at least 2 s to
     * run (a pause then outlives them); {@code fallback} when none holds any or the database does not answer.
     */
    private NodeProcess busiest(List<NodeProcess> candidates, NodeProcess fallback) {
        Map<String, NodeProcess> byId = new java.util.HashMap<>();
        for (NodeProcess c : candidates) byId.put(c.nodeId, c);
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement("""
                SELECT owner_id FROM tasks
                 WHERE status = 'running' AND lease_expires_at > now() + interval '2 seconds' AND owner_id = ANY(?)
                 GROUP BY owner_id ORDER BY count(*) DESC LIMIT 1""")) {
            ps.setArray(1, c.createArrayOf("text", byId.keySet().toArray()));
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) return byId.get(rs.getString(1));
            }
        } catch (SQLException e) {
            // the database is being cut or restarted: any node will do
        }
        return candidates.contains(fallback) ? fallback : candidates.get(random.nextInt(candidates.size()));
    }

    /** What the next pause is for: an effect the run has yet to show, or nothing in particular. */
    private enum Steer { NONE, TAKEOVER, REFUSAL, ZOMBIE_REFUSAL }

    private Steer steered = Steer.NONE;
    private boolean sawAll;

    /**
     * The first effect of take-over, refused renewal (lease_lost) and refused completion the run has yet
     * to show, by its events (of any owner: a steer, not the checker's count); once all are seen, never
     * asked again.
     */
    private Steer missingEffect() {
        if (sawAll) return Steer.NONE;
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement("""
                SELECT bool_or(event = 'claimed' AND detail ? 'took_over_from'), bool_or(event = 'lease_lost'),
                       bool_or(event = 'completion_refused')
                  FROM task_events WHERE event IN ('claimed', 'lease_lost', 'completion_refused')""");
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            if (!rs.getBoolean(1)) return Steer.TAKEOVER;
            if (!rs.getBoolean(2)) return Steer.REFUSAL;
            if (!rs.getBoolean(3)) return Steer.ZOMBIE_REFUSAL;
            sawAll = true;
            return Steer.NONE;
        } catch (SQLException e) {
            return Steer.NONE; // the database is away: pick at random
        }
    }

    /** Terminates up to {@code k} of the node's sessions (found by the proxy's upstream ports). */
    private int terminateBackends(NodeProcess n, int k) throws SQLException {
        List<Integer> ports = new ArrayList<>(n.proxy.upstreamPorts());
        if (ports.isEmpty()) return 0;
        Collections.shuffle(ports, random);
        Integer[] pick = ports.subList(0, Math.min(k, ports.size())).toArray(Integer[]::new);
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement("""
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = ? AND client_port = ANY(?) AND pid <> pg_backend_pid()""")) {
            ps.setString(1, database);
            ps.setArray(2, c.createArrayOf("integer", pick));
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    @FunctionalInterface
    private interface Step {
        void run() throws Exception;
    }

    private void async(String what, Step step) {
        faults.execute(() -> {
            try {
                step.run();
            } catch (Exception e) {
                log("fault '%s' failed: %s", what, e);
            }
        });
    }

    /** Waits out a fault's duration; returns early once healing has begun. */
    private void pause(long ms) throws InterruptedException {
        long until = System.currentTimeMillis() + ms;
        while (!healing && System.currentTimeMillis() < until) {
            Thread.sleep(Math.min(100, Math.max(1, until - System.currentTimeMillis()))); // a fault's duration
        }
    }

    /** A node that exited without being asked (e.g. no database at start): noted and started again. */
    private void restartExited() {
        for (NodeProcess n : nodes) {
            if (n.exitedOnItsOwn()) {
                unexpectedExits.add(n.nodeId + " exit " + n.exitCode());
                n.markExited();
                async("restart " + n.nodeId, () -> {
                    pause(1000);
                    n.start();
                });
            }
        }
    }
}

package pgdispatch.chaos;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.locks.ReentrantLock;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;
import pgdispatch.store.Mutant;
import pgdispatch.store.TaskStore;

/**
 * The chaos run (docs/RELIABILITY.md): real node processes of {@code pgdispatch.jar run} against a
 * database of their own, each through a {@link ChaosProxy}; a mixed workload; for a fixed time, faults
 * injected at random (kill -9 and restart under the same node id, SIGTERM and restart, connection
 * drops, stalls and blackholes, {@code pg_terminate_backend} of the nodes' sessions, SIGSTOP longer
 * than the lease, a restart of a private PostgreSQL); then everything healed, the queue drained, the
 * nodes stopped and the {@link Invariants} checked. Handlers attack too ({@link FaultyHandlers}), and the
 * {@link StallWatch} checks meanwhile that no node says ready while it sits on a task. Prints one
 * summary line on stdout: {@code chaos: tasks=N kills=K stops=S cuts=C zombies=Z pg_restarts=R
 * handler_faults=H takeovers=T refusals=F requeues=Q zombie_refusals=Z lost=0 double_accepted=0
 * over_budget=0 stuck=0 stalled=0 wrong_result=0 unexercised=none mutant=none seconds=T}; details go to
 * stderr. Exit 0 when every invariant holds and the run showed every fault effect it must, 1 on any
 * violation or unexercised effect, 2 on bad arguments, 3 when the run itself could not be set up or finish.
 *
 * <p>It lives in main, not test scope, so CI and operators run it from the shipped jar alone
 * ({@code java -cp pgdispatch.jar pgdispatch.chaos.ChaosRun}, via {@code scripts/chaos}), and tests
 * reuse its {@link ChaosProxy}. It is not a {@code pgdispatch} subcommand: nothing an operator needs.
 */
public final class ChaosRun {
    static final int OK = 0;
    static final int VIOLATION = 1;
    static final int USAGE = 2;
    static final int BROKEN = 3;

    /** Node timings: short, so that faults turn into lease expiries and takeovers within seconds. */
    static final int LEASE_S = 6;
    static final int RENEW_S = 1;
    static final int STALE_S = 8;
    // Two node timeouts, so that every run shows each fault effect the checker requires. The first node's
    // is shorter than the lease: its reaper requeues a silent node's tasks while their leases still run,
    // and the node learns it at its next renewal (lease_lost: a refusal). The others' is longer: when the
    // first node falls silent, its tasks are found by their expired leases, which the other nodes' claims
    // take over (or their reapers requeue).
    static final int NODE_TIMEOUT_S = 10;
    static final int FIRST_NODE_TIMEOUT_S = 3;
    static final int DRAIN_S = 3;

    private final ChaosOptions o;
    private final PrintStream out;
    private final PrintStream err;
    private final Random random;
    private final List<NodeProcess> nodes = new ArrayList<>();
    private final List<ChaosProxy> proxies = new ArrayList<>();
    private final ReentrantLock serverRestart = new ReentrantLock();
    private final List<String> unexpectedExits = Collections.synchronizedList(new ArrayList<>());
    private final long startedMs = System.currentTimeMillis();
    private FaultInjector faults;
    private StallWatch stallWatch;
    /** Each node's HTTP port, kept across its restarts: the stall watch asks /health/ready there. */
    private final Map<String, Integer> httpPorts = new HashMap<>();
    private PrivateCluster cluster;
    private DatabaseUrl admin;
    private DatabaseUrl url;
    private Database db;
    private File runDir;
    private boolean cleanedUp;

    ChaosRun(ChaosOptions o, PrintStream out, PrintStream err) {
        this.o = o;
        this.out = out;
        this.err = err;
        this.random = new Random(o.seed);
    }

    public static void main(String[] args) {
        ChaosOptions o;
        try {
            o = ChaosOptions.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("chaos: " + e.getMessage() + " (see --help)");
            System.exit(USAGE);
            return;
        }
        if (o.help) {
            System.out.print(ChaosOptions.USAGE);
            System.exit(OK);
            return;
        }
        ChaosRun run = new ChaosRun(o, System.out, System.err);
        Thread hook = new Thread(run::cleanUp, "chaos-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        int code;
        try {
            code = run.run();
        } catch (Exception e) {
            System.err.println("chaos: run broken: " + e);
            e.printStackTrace(System.err);
            code = BROKEN;
        }
        run.cleanUp();
        System.exit(code);
    }

    int run() throws Exception {
        long deadline = startedMs + o.timeoutS * 1000L;
        setUp();
        startNodes();
        awaitNodesRegistered(60_000);
        log("nodes up: %s; faults for %ds, %d tasks, seed %d", nodeIds(), o.seconds, o.tasks, o.seed);

        // sleeps may fill at most 40% of the worker slots over the fault window (at most 7% of the tasks):
        // the tens of thousands of noop of a full run must not queue behind them
        double sleepShare = Math.min(0.07, 0.4 * o.nodes * o.concurrency * o.seconds / (Workload.MEAN_SLEEP_S * o.tasks));
        // handler faults (FaultyHandlers): 0.5% of the tasks, at least 25, so that a short run meets each kind
        double faultShare = Math.min(0.05, Math.max(25.0, o.tasks / 200.0) / o.tasks);
        Workload workload = new Workload(o.seed, sleepShare, faultShare, new TaskStore(db), db.dataSource());
        stallWatch = new StallWatch(nodes, httpPorts, db.dataSource(), line -> log("%s", line));
        stallWatch.start();
        int initial = Math.max(1, o.tasks * 2 / 5);
        enqueueGuarded(workload, initial, deadline);
        Thread producer = Thread.ofPlatform().daemon().name("chaos-producer").start(() -> produce(workload, initial, deadline));

        faults = new FaultInjector(nodes, random, cluster, serverRestart, db.dataSource(), url.database(), unexpectedExits,
                line -> log("%s", line));
        faults.run(o.seconds);
        producer.join(Math.max(1, deadline - System.currentTimeMillis()));
        heal();
        boolean drained = awaitDrained(Math.min(deadline - 30_000, System.currentTimeMillis() + o.drainS * 1000L));
        if (!drained) log("queue not drained within %ds; the rest counts as stuck", o.drainS);
        stallWatch.stop();
        stopNodes();

        Invariants.Verdict v;
        Map<String, Long> minimum = new HashMap<>();
        for (String effect : Invariants.EFFECTS) minimum.put(effect, (long) o.minEffects);
        try (Connection c = Database.connect(url)) {
            v = new Invariants(o.maxRequeue, minimum).check(c, workload.expected());
        }
        long seconds = (System.currentTimeMillis() - startedMs) / 1000;
        detail(v, workload);
        long stalled = stallWatch.stalled();
        out.printf(Locale.ROOT, "chaos: tasks=%d kills=%d stops=%d cuts=%d zombies=%d pg_restarts=%d handler_faults=%d takeovers=%d "
                        + "refusals=%d requeues=%d zombie_refusals=%d lost=%d double_accepted=%d over_budget=%d stuck=%d stalled=%d "
                        + "wrong_result=%d unexercised=%s mutant=%s seconds=%d%n", v.tasks(), faults.count("kills"), faults.count("stops"),
                faults.count("cuts"), faults.count("zombies"), faults.count("pg_restarts"), workload.handlerFaults(),
                v.effect("takeovers"), v.effect("refusals"), v.effect("requeues"), v.effect("zombie_refusals"), v.lost(),
                v.doubleAccepted(), v.overBudget(), v.stuck(), stalled, v.wrongResult(),
                v.unexercised().isEmpty() ? "none" : String.join(",", v.unexercised()).replace(' ', ':'), o.mutant.label(), seconds);
        out.flush();
        return v.ok() && stalled == 0 ? OK : VIOLATION;
    }

    // ------------------------------------------------------------------ set-up

    private void setUp() throws Exception {
        runDir = new File(o.runDir != null ? o.runDir : "target/chaos/" + o.runId);
        Files.createDirectories(runDir.toPath());
        // the bash front's trap kills what this file lists (after checking the PGD_CHAOS_RUN mark)
        Files.writeString(new File(runDir, "pids").toPath(), ProcessHandle.current().pid() + "\n",
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        admin = DatabaseUrl.parse("--admin-url", o.adminUrl);
        if (o.pgRestart) {
            String why = PrivateCluster.unavailableBecause();
            if (why != null) {
                log("--pg-restart skipped: %s; running against %s", why, admin);
            } else {
                cluster = PrivateCluster.create(o.runId);
                admin = new DatabaseUrl("127.0.0.1", cluster.port, "postgres", "postgres", null, Map.of());
                log("private cluster %s/%s on port %d", cluster.version, cluster.name, cluster.port);
            }
        }
        String name = "pgd_chaos_" + o.runId;
        url = admin.withDatabase(name);
        Database.createIfMissing(url);
        db = Database.open(url, 4, "pgd-chaos-driver");
        db.migrate();
        log("database %s migrated; logs in %s", url, runDir);
    }

    private void startNodes() throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        String jar = o.jar != null ? o.jar : System.getProperty("java.class.path").split(File.pathSeparator)[0];
        File pids = new File(runDir, "pids");
        for (int i = 1; i <= o.nodes; i++) {
            String id = "chaos-n" + i;
            ChaosProxy proxy = new ChaosProxy(id, url.host(), url.port());
            proxies.add(proxy);
            Map<String, String> env = new HashMap<>();
            String via = "jdbc:postgresql://127.0.0.1:" + proxy.port() + "/" + url.database() + "?user="
                    + (url.user() == null ? "postgres" : url.user()) + (url.password() == null ? "" : "&password=" + url.password());
            env.put("DATABASE_URL", via);
            env.put("DISPATCHER_NODE_ID", id);
            env.put("TASK_LEASE_S", Integer.toString(LEASE_S));
            env.put("TASK_RENEW_S", Integer.toString(RENEW_S));
            env.put("TASK_STALE_S", Integer.toString(STALE_S));
            env.put("TASK_NODE_TIMEOUT_S", Integer.toString(i == 1 ? FIRST_NODE_TIMEOUT_S : NODE_TIMEOUT_S));
            // must not exceed the node timeout: off, as the run had it in effect before (60 s never
            // fired), so a loaded machine's slow statement is not cut; a blackholed proxy closes its
            // connections when it passes traffic again
            env.put("PGDISPATCH_SOCKET_TIMEOUT_S", "0");
            env.put("TASK_DRAIN_S", Integer.toString(DRAIN_S));
            env.put("TASK_MAX_REQUEUE", Integer.toString(o.maxRequeue));
            env.put("TASK_CONCURRENCY", Integer.toString(o.concurrency));
            env.put("TASK_POLL_MS", "500");
            env.put("PGDISPATCH_POOL_SIZE", "5");
            httpPorts.put(id, freePort());
            env.put("PGDISPATCH_HTTP_PORT", Integer.toString(httpPorts.get(id)));
            env.put("PGD_CHAOS_RUN", o.runId); // the bash front's trap kills only processes carrying this mark
            List<String> cmd = List.of(java, "-Xmx160m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    "-D" + Mutant.PROPERTY + "=" + (o.mutant == Mutant.NONE ? "" : o.mutant.label()), "-jar", jar, "run");
            NodeProcess n = new NodeProcess(id, proxy, cmd, env, new File(runDir, id + ".log"), pids);
            nodes.add(n);
            n.start();
        }
    }

    private static int freePort() throws IOException {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /**
     * Waits until every node is registered and heartbeating. A node that exits meanwhile (it may have been
     * started while its server was still restarting) is started again, a few times at most.
     */
    private void awaitNodesRegistered(long timeoutMs) throws Exception {
        long until = System.currentTimeMillis() + timeoutMs;
        Map<String, Integer> retries = new HashMap<>();
        while (true) {
            try (Connection c = db.dataSource().getConnection(); Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count(*) FROM dispatcher_nodes WHERE stopped_at IS NULL"
                         + " AND last_seen_at > now() - interval '" + NODE_TIMEOUT_S + " seconds'")) {
                rs.next();
                if (rs.getInt(1) >= o.nodes && nodes.stream().allMatch(NodeProcess::alive)) return;
            } catch (SQLException e) {
                // the server may be coming back from a restart: ask again
            }
            for (NodeProcess n : nodes) {
                if (!n.alive() && n.state() == NodeProcess.State.UP) {
                    int tries = retries.merge(n.nodeId, 1, Integer::sum);
                    unexpectedExits.add(n.nodeId + " exit " + n.exitCode() + " (at start)");
                    if (tries > 3) {
                        throw new IllegalStateException("node " + n.nodeId + " exited at start " + tries + " times, last with code "
                                + n.exitCode() + "; see " + new File(runDir, n.nodeId + ".log"));
                    }
                    n.start();
                }
            }
            if (System.currentTimeMillis() > until) throw new IllegalStateException("nodes did not register within " + timeoutMs + " ms");
            Thread.sleep(200); // polling the database for the nodes' registration
        }
    }

    private void produce(Workload w, int already, long deadline) {
        int left = o.tasks - already;
        long window = Math.max(1000, o.seconds * 700L); // the rest arrives during the first 70% of the fault window
        int waves = (int) Math.max(1, window / 500);
        try {
            for (int i = 0; i < waves && left > 0; i++) {
                int n = (int) Math.ceil(left / (double) (waves - i));
                enqueueGuarded(w, n, deadline);
                left -= n;
                Thread.sleep(window / waves); // the arrival rate of the workload
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            log("producer failed: %s", e);
        }
    }

    private void enqueueGuarded(Workload w, int n, long deadline) throws InterruptedException {
        serverRestart.lock(); // never insert while the driver restarts the server: the outcome check needs it up
        try {
            w.enqueue(n, deadline);
        } finally {
            serverRestart.unlock();
        }
    }

    // ------------------------------------------------------------------ heal, drain, stop

    private void heal() throws Exception {
        // network first: a restart a fault scheduled runs at once now and must find a working proxy
        for (ChaosProxy p : proxies) p.set(ChaosProxy.Mode.PASS);
        faults.stop();
        for (ChaosProxy p : proxies) p.set(ChaosProxy.Mode.PASS);
        for (NodeProcess n : nodes) {
            switch (n.state()) {
                case PAUSED -> n.resume();
                case DRAINING -> {
                    n.awaitExit(30_000);
                    n.start();
                }
                case KILLED, EXITED -> n.start();
                case UP -> { }
            }
        }
        awaitNodesRegistered(60_000);
        log("healed: every proxy passes, every node is up");
    }

    private boolean awaitDrained(long untilMs) throws Exception {
        long lastLog = 0;
        while (true) {
            long open;
            try (Connection c = db.dataSource().getConnection(); Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count(*) FROM tasks WHERE status IN ('pending', 'running')")) {
                rs.next();
                open = rs.getLong(1);
            }
            if (open == 0) return true;
            for (NodeProcess n : nodes) {
                if (!n.alive()) {
                    unexpectedExits.add(n.nodeId + " exit " + n.exitCode() + " (while draining)");
                    n.start();
                }
            }
            if (System.currentTimeMillis() - lastLog > 10_000) {
                log("draining: %d tasks pending or running", open);
                lastLog = System.currentTimeMillis();
            }
            if (System.currentTimeMillis() > untilMs) return false;
            Thread.sleep(500); // polling the queue depth
        }
    }

    private void stopNodes() throws InterruptedException {
        for (NodeProcess n : nodes) n.terminate();
        for (NodeProcess n : nodes) {
            if (!n.awaitExit((DRAIN_S + 20) * 1000L)) log("%s did not stop within %ds; killed", n.nodeId, DRAIN_S + 20);
        }
    }

    /** Kills whatever is still running, closes the proxies, drops the database (unless --keep) and cluster. */
    synchronized void cleanUp() {
        if (cleanedUp) return;
        cleanedUp = true;
        if (faults != null) faults.halt();
        for (NodeProcess n : nodes) {
            try {
                if (n.alive()) n.kill();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (ChaosProxy p : proxies) p.close();
        if (db != null) db.close();
        if (url != null && !o.keep) {
            try (Connection c = Database.connect(admin); Statement st = c.createStatement()) {
                st.execute("DROP DATABASE IF EXISTS \"" + url.database() + "\" WITH (FORCE)");
            } catch (SQLException e) {
                err.println("chaos-run: dropping " + url.database() + " failed: " + e.getMessage());
            }
        } else if (url != null) {
            err.println("chaos-run: kept database " + url + " (--keep)");
        }
        if (cluster != null && !o.keep) cluster.close();
    }

    // ------------------------------------------------------------------ output

    private void detail(Invariants.Verdict v, Workload w) {
        log("enqueued by kind: %s", w.byKind());
        log("faults: %s", faults.counts());
        log("node starts: %s; unexpected exits: %s", nodes.stream().map(n -> n.nodeId + "=" + n.starts()).toList(),
                unexpectedExits.isEmpty() ? "none" : unexpectedExits);
        log("proxy connections accepted: %s", proxies.stream().map(p -> Long.toString(p.acceptedConnections())).toList());
        log("history: %s", v.stats());
        log("stall watch: %s", stallWatch.stats());
        if (!v.unexercised().isEmpty()) log("UNEXERCISED (the run did not show enough of): %s", v.unexercised());
        if (!v.ok()) {
            log("VIOLATIONS: %s", v.byRule());
            v.examples().forEach((rule, ex) -> ex.forEach(e -> log("  %s: %s", rule, e)));
        }
    }

    private void log(String fmt, Object... args) {
        long s = (System.currentTimeMillis() - startedMs) / 1000;
        err.printf(Locale.ROOT, "chaos-run [%3ds] %s%n", s, String.format(Locale.ROOT, fmt, args));
    }

    private List<String> nodeIds() {
        return nodes.stream().map(n -> n.nodeId + "(pid " + n.pid() + ")").toList();
    }
}

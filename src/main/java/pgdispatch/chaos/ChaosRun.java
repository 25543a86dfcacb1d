package pgdispatch.chaos;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.PreparedStatement;
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
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;

/**
 * The chaos run (docs/RELIABILITY.md): real node processes of {@code pgdispatch.jar run} against a
 * database of their own, each through a {@link ChaosProxy}; a mixed workload; for a fixed time, faults
 * injected at random (kill -9 and restart under the same node id, SIGTERM and restart, connection
 * drops, stalls and blackholes, {@code pg_terminate_backend} of the nodes' sessions, SIGSTOP longer
 * than the lease, a restart of a private PostgreSQL); then everything healed, the queue drained, the
 * nodes stopped and the {@link Invariants} checked. Prints one summary line on stdout:
 * {@code chaos: tasks=N kills=K stops=S cuts=C zombies=Z pg_restarts=R lost=0 double_accepted=0
 * over_budget=0 stuck=0 seconds=T}; details go to stderr. Exit 0 when every invariant holds, 1 on any
 * violation, 2 on bad arguments, 3 when the run itself could not be set up or finish.
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
    static final int NODE_TIMEOUT_S = 3;
    static final int DRAIN_S = 3;

    private final Options o;
    private final PrintStream out;
    private final PrintStream err;
    private final Random random;
    private final List<NodeProcess> nodes = new ArrayList<>();
    private final List<ChaosProxy> proxies = new ArrayList<>();
    private final ReentrantLock serverRestart = new ReentrantLock();
    private final ExecutorService faults = Executors.newCachedThreadPool(Thread.ofPlatform().daemon().name("chaos-fault-", 1).factory());
    private final Map<String, AtomicInteger> counts = Collections.synchronizedMap(new java.util.TreeMap<>());
    private final List<String> unexpectedExits = Collections.synchronizedList(new ArrayList<>());
    private final long startedMs = System.currentTimeMillis();
    private volatile boolean healing;
    private PrivateCluster cluster;
    private DatabaseUrl admin;
    private DatabaseUrl url;
    private Database db;
    private File runDir;
    private boolean cleanedUp;

    ChaosRun(Options o, PrintStream out, PrintStream err) {
        this.o = o;
        this.out = out;
        this.err = err;
        this.random = new Random(o.seed);
    }

    public static void main(String[] args) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("chaos: " + e.getMessage() + " (see --help)");
            System.exit(USAGE);
            return;
        }
        if (o.help) {
            System.out.print(Options.USAGE);
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
        Workload workload = new Workload(o.seed, sleepShare, new TaskStore(db), db.dataSource());
        int initial = Math.max(1, o.tasks * 2 / 5);
        enqueueGuarded(workload, initial, deadline);
        Thread producer = Thread.ofPlatform().daemon().name("chaos-producer").start(() -> produce(workload, initial, deadline));

        injectFaults();
        producer.join(Math.max(1, deadline - System.currentTimeMillis()));
        heal();
        boolean drained = awaitDrained(Math.min(deadline - 30_000, System.currentTimeMillis() + o.drainS * 1000L));
        if (!drained) log("queue not drained within %ds; the rest counts as stuck", o.drainS);
        stopNodes();

        Invariants.Verdict v;
        try (Connection c = Database.connect(url)) {
            v = new Invariants(o.maxRequeue).check(c, workload.committed());
        }
        long seconds = (System.currentTimeMillis() - startedMs) / 1000;
        detail(v, workload);
        out.printf(Locale.ROOT, "chaos: tasks=%d kills=%d stops=%d cuts=%d zombies=%d pg_restarts=%d lost=%d double_accepted=%d "
                        + "over_budget=%d stuck=%d seconds=%d%n", v.tasks(), count("kills"), count("stops"), count("cuts"),
                count("zombies"), count("pg_restarts"), v.lost(), v.doubleAccepted(), v.overBudget(), v.stuck(), seconds);
        out.flush();
        return v.ok() ? OK : VIOLATION;
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
            env.put("TASK_NODE_TIMEOUT_S", Integer.toString(NODE_TIMEOUT_S));
            env.put("TASK_DRAIN_S", Integer.toString(DRAIN_S));
            env.put("TASK_MAX_REQUEUE", Integer.toString(o.maxRequeue));
            env.put("TASK_CONCURRENCY", Integer.toString(o.concurrency));
            env.put("TASK_POLL_MS", "500");
            env.put("PGDISPATCH_POOL_SIZE", "5");
            env.put("PGDISPATCH_HTTP_PORT", "off");
            env.put("PGD_CHAOS_RUN", o.runId); // the bash front's trap kills only processes carrying this mark
            List<String> cmd = List.of(java, "-Xmx160m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    "-jar", jar, "run");
            NodeProcess n = new NodeProcess(id, proxy, cmd, env, new File(runDir, id + ".log"), pids);
            nodes.add(n);
            n.start();
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

    // ------------------------------------------------------------------ faults

    private enum Fault { KILL, TERM, PAUSE, DROP, STALL, BLACKHOLE, TERMINATE_BACKENDS, PG_RESTART }

    private void injectFaults() throws InterruptedException {
        long until = System.currentTimeMillis() + o.seconds * 1000L;
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
                        if (!n.awaitExit((DRAIN_S + 20) * 1000L)) log("%s did not exit within %ds of SIGTERM; killed", n.nodeId, DRAIN_S + 20);
                        pause(restartDelay / 2);
                        n.start();
                    });
                }
                case PAUSE -> {
                    n.pause();
                    count("zombies", 1);
                    long ms = (LEASE_S + 1) * 1000L + random.nextInt(4000); // longer than its lease: it wakes up a zombie
                    async("resume " + n.nodeId, () -> {
                        pause(ms);
                        n.resume();
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

    /** Terminates up to {@code k} of the node's sessions (found by the proxy's upstream ports). */
    private int terminateBackends(NodeProcess n, int k) throws SQLException {
        List<Integer> ports = new ArrayList<>(n.proxy.upstreamPorts());
        if (ports.isEmpty()) return 0;
        Collections.shuffle(ports, random);
        Integer[] pick = ports.subList(0, Math.min(k, ports.size())).toArray(Integer[]::new);
        try (Connection c = db.dataSource().getConnection(); PreparedStatement ps = c.prepareStatement("""
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = ? AND client_port = ANY(?) AND pid <> pg_backend_pid()""")) {
            ps.setString(1, url.database());
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

    // ------------------------------------------------------------------ heal, drain, stop

    private void heal() throws Exception {
        healing = true;
        // network first: a restart scheduled by a fault runs at once now and must find a working proxy
        for (ChaosProxy p : proxies) p.set(ChaosProxy.Mode.PASS);
        faults.shutdown();
        if (!faults.awaitTermination(60, TimeUnit.SECONDS)) log("fault threads still busy after 60s");
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
        healing = true;
        faults.shutdownNow();
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
        log("faults: %s", counts);
        log("node starts: %s; unexpected exits: %s", nodes.stream().map(n -> n.nodeId + "=" + n.starts()).toList(),
                unexpectedExits.isEmpty() ? "none" : unexpectedExits);
        log("proxy connections accepted: %s", proxies.stream().map(p -> Long.toString(p.acceptedConnections())).toList());
        log("history: %s", v.stats());
        if (!v.ok()) {
            log("VIOLATIONS: %s", v.byRule());
            v.examples().forEach((rule, ex) -> ex.forEach(e -> log("  %s: %s", rule, e)));
        }
    }

    private void log(String fmt, Object... args) {
        long s = (System.currentTimeMillis() - startedMs) / 1000;
        err.printf(Locale.ROOT, "chaos-run [%3ds] %s%n", s, String.format(Locale.ROOT, fmt, args));
    }

    private long count(String key) {
        AtomicInteger c = counts.get(key);
        return c == null ? 0 : c.get();
    }

    private void count(String key, int n) {
        counts.computeIfAbsent(key, k -> new AtomicInteger()).addAndGet(n);
    }

    private List<String> nodeIds() {
        return nodes.stream().map(n -> n.nodeId + "(pid " + n.pid() + ")").toList();
    }

    /** Command-line options; {@code --short} is the CI form. */
    static final class Options {
        static final String USAGE = """
                usage: java -cp pgdispatch.jar pgdispatch.chaos.ChaosRun [options]   (normally via scripts/chaos)
                  --short            CI form: 3 nodes, 3000 tasks, 75 s of faults
                  --seconds N        fault window in seconds (default 180; short 75)
                  --tasks N          tasks to enqueue (default 30000; short 3000)
                  --nodes N          node processes, at least 3 (default 3)
                  --seed N           random seed (default: random; printed)
                  --concurrency N    worker slots per node (default 16)
                  --max-requeue N    TASK_MAX_REQUEUE of the nodes (default 3)
                  --drain N          seconds to wait for the queue to drain after healing (default 120; short 60)
                  --timeout N        hard limit for the whole run in seconds (default: seconds + drain + 80)
                  --pg-restart       run on a private PostgreSQL cluster (pg_createcluster) and restart it too
                  --keep             keep the database (and private cluster) for inspection
                  --admin-url URL    server to create the database on (default jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres)
                  --jar PATH         the pgdispatch jar the nodes run (default: this one)
                  --run-id ID        names the database pgd_chaos_ID (default: random)
                  --run-dir DIR      node logs and pid file (default target/chaos/ID)
                """;

        boolean help;
        boolean shortRun;
        int seconds = 180;
        int tasks = 30_000;
        int nodes = 3;
        long seed = new Random().nextLong() & 0xffffffffL;
        int concurrency = 16;
        int maxRequeue = 3;
        int drainS = 120;
        int timeoutS = -1;
        boolean pgRestart;
        boolean keep;
        String adminUrl = "jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres";
        String jar;
        String runId = UUID.randomUUID().toString().replace("-", "").substring(0, 8);
        String runDir;

        static Options parse(String[] args) {
            Options o = new Options();
            Map<String, String> given = new HashMap<>();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "-h", "--help" -> o.help = true;
                    case "--short" -> o.shortRun = true;
                    case "--pg-restart" -> o.pgRestart = true;
                    case "--keep" -> o.keep = true;
                    case "--seconds", "--tasks", "--nodes", "--seed", "--concurrency", "--max-requeue", "--drain", "--timeout",
                         "--admin-url", "--jar", "--run-id", "--run-dir" -> {
                        if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
                        given.put(a, args[++i]);
                    }
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (o.shortRun) {
                o.seconds = 75;
                o.tasks = 3000;
                o.drainS = 60;
            }
            o.seconds = num(given, "--seconds", o.seconds, 5, 86_400);
            o.tasks = num(given, "--tasks", o.tasks, 1, 10_000_000);
            o.nodes = num(given, "--nodes", o.nodes, 3, 32);
            o.concurrency = num(given, "--concurrency", o.concurrency, 1, 1000);
            o.maxRequeue = num(given, "--max-requeue", o.maxRequeue, 0, 1000);
            o.drainS = num(given, "--drain", o.drainS, 10, 86_400);
            o.timeoutS = num(given, "--timeout", o.seconds + o.drainS + 80, 60, 7 * 86_400);
            if (given.containsKey("--seed")) {
                try {
                    o.seed = Long.parseLong(given.get("--seed"));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--seed=" + given.get("--seed") + " must be a whole number");
                }
            }
            o.adminUrl = given.getOrDefault("--admin-url", o.adminUrl);
            o.jar = given.get("--jar");
            o.runId = given.getOrDefault("--run-id", o.runId);
            if (!o.runId.matches("[a-z0-9_]{1,30}")) {
                throw new IllegalArgumentException("--run-id=" + o.runId + " must be 1-30 of a-z 0-9 _");
            }
            o.runDir = given.get("--run-dir");
            return o;
        }

        private static int num(Map<String, String> given, String name, int def, int min, int max) {
            String raw = given.get(name);
            if (raw == null) return def;
            try {
                int v = Integer.parseInt(raw);
                if (v < min || v > max) throw new NumberFormatException();
                return v;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + "=" + raw + " must be a whole number from " + min + " to " + max);
            }
        }
    }
}

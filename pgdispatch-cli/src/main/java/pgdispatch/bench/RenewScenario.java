package pgdispatch.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.api.StuckPolicy;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.Database;
import pgdispatch.store.HeldLease;
import pgdispatch.store.NodeStore;
import pgdispatch.store.RenewResult;
import pgdispatch.store.StuckRules;
import pgdispatch.store.TaskStore;

/**
 * {@code renew}: one node's renewal tick ({@link TaskStore#renewHeld}: every held lease plus the node
 * heartbeat) with H leases held, timed over several ticks; the statements per tick from the server's
 * counters, and how many of the row updates were HOT (no index entry written). Then a real node holding
 * the largest H leases (H workers): its heap after a full GC and its own renewal tick. The first full tick is
 * not measured: right after a bulk load every page is full to its fillfactor, and the rows whose new
 * version does not fit move once; later ticks find the room the previous versions left.
 */
final class RenewScenario implements Scenario {
    private static final int TICKS = 5;
    private static final String OWNER = "bench-renew";
    /** The default stuck rule for the preloaded kind: every tick also judges every held attempt (issue 14). */
    private static final StuckRules RULES = new StuckRules(Map.of("sleep", new StuckRules.Rule(StuckPolicy.DEFAULT_FACTOR,
            StuckPolicy.DEFAULT_FLOOR, false, false)), Duration.ofSeconds(900), 3);
    /** Progress reports measured (one statement each, as handlers send them). */
    private static final int HEARTBEATS = 500;

    /**
     * A real node holding {@code h} leases (h workers, each in a long {@code sleep}): the heap it uses
     * then (after a full GC, whole JVM) and its own renewal tick ({@link Dispatcher#renewNow()}).
     */
    private static void node(ScratchDatabase db, Map<String, String> env, int h, int batch, Map<String, Object> f)
            throws InterruptedException {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        db.preload(h, "sleep", "{\"ms\": 600000}");
        MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
        try (BenchNodes nodes = new BenchNodes()) {
            Dispatcher d = nodes.add(BenchNodes.config(env, db.url(), "bench-renew-node", h, Map.of("TASK_DRAIN_S", "0")), batch);
            long until = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (d.held() < h) {
                if (System.nanoTime() > until) throw new IllegalStateException("node holds " + d.held() + " of " + h);
                Thread.sleep(10); // reading the node's in-process lease count
            }
            d.renewNow(); // warm-up
            long t0 = System.nanoTime();
            d.renewNow();
            f.put("node_tick_ms_" + h, (System.nanoTime() - t0) / 1e6);
            System.gc(); // measuring what stays reachable while the leases are held
            f.put("node_heap_mb_" + h, mem.getHeapMemoryUsage().getUsed() / 1048576.0);
            f.put("heap_max_mb", mem.getHeapMemoryUsage().getMax() / 1048576.0);
            d.halt(); // its tasks sleep for minutes: no drain
        }
    }

    /** Opens a pool, warms it, runs {@code n} ticks (times into {@code ms}); returns statements, task updates, HOT updates. */
    private static long[] ticks(ScratchDatabase db, String incarnation, List<HeldLease> held, int n, double[] ms) {
        var before = db.counters();
        try (Database pool = Database.open(db.url(), 1, "pgdispatch-bench-renew")) {
            TaskStore store = new TaskStore(pool);
            store.renewHeld(OWNER, incarnation, held.subList(0, 1), RULES); // connection and statement warm-up
            for (int i = 0; i < n; i++) {
                long t0 = System.nanoTime();
                RenewResult r = store.renewHeld(OWNER, incarnation, held, RULES);
                ms[i] = (System.nanoTime() - t0) / 1e6;
                if (r.renewed().size() != held.size() || !r.nodeRegistered()) {
                    throw new IllegalStateException("renewed " + r.renewed().size() + " of " + held.size());
                }
            }
        }
        var after = db.counters();
        return new long[] {after.statementsSince(before), after.updates("tasks", before), after.hotUpdates("tasks", before)};
    }

    /**
     * {@link #HEARTBEATS} progress reports (checkpoint and message, as a handler sends them) on held rows of
     * the last preload: how many of their row updates were HOT. A report changes only columns no index
     * contains (last_heartbeat_at, the cadence, progress, the lease).
     */
    private static void heartbeats(ScratchDatabase db, Map<String, Object> f) {
        List<Map<String, Object>> rows = db.rows("SELECT id, lease_token FROM tasks WHERE status = 'running' AND owner_id = '"
                + OWNER + "' ORDER BY id LIMIT " + HEARTBEATS);
        var before = db.counters();
        try (Database pool = Database.open(db.url(), 1, "pgdispatch-bench-renew")) {
            TaskStore store = new TaskStore(pool);
            for (Map<String, Object> r : rows) {
                store.heartbeat(OWNER, ((Number) r.get("id")).longValue(), ((Number) r.get("lease_token")).longValue(),
                        Duration.ofMinutes(10), "{\"page\": 3}", "page 3 of 9");
            }
        }
        var after = db.counters();
        long updates = after.updates("tasks", before);
        f.put("heartbeat_updates", updates);
        f.put("heartbeat_hot_pct", 100.0 * after.hotUpdates("tasks", before) / Math.max(1, updates));
    }

    @Override
    public String name() {
        return "renew";
    }

    @Override
    public String headline() {
        return "tick_ms";
    }

    @Override
    public String summary(Map<String, Object> f) {
        StringBuilder sb = new StringBuilder();
        for (String k : f.keySet()) {
            if (k.matches("tick_ms_\\d+")) {
                if (!sb.isEmpty()) sb.append(", ");
                sb.append(k.substring(8)).append(" leases in ").append(Bench.num(f.get(k))).append(" ms");
            }
        }
        String node = f.keySet().stream().filter(k -> k.startsWith("node_heap_mb_")).findFirst()
                .map(k -> "; a node holding " + k.substring(13) + " leases: " + Bench.num(f.get(k)) + " MB heap used of "
                        + Bench.num(f.get("heap_max_mb")) + " MB, its tick " + Bench.num(f.get("node_tick_ms_" + k.substring(13))) + " ms")
                .orElse("");
        return sb + " per tick, " + Bench.num(f.get("statements_per_tick")) + " statement(s) per tick, "
                + Bench.num(f.get("hot_pct")) + "% of the lease updates HOT, " + Bench.num(f.get("heartbeat_hot_pct"))
                + "% of " + Bench.num(f.get("heartbeat_updates")) + " progress reports HOT" + node;
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        Map<String, Object> f = new LinkedHashMap<>();
        long statements = 0, ticks = 0, updates = 0, hot = 0;
        for (int h : o.leases()) {
            db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
            db.preload(h, "sleep", "{\"ms\": 600000}");
            String incarnation;
            List<HeldLease> held = new ArrayList<>();
            try (Database pool = Database.open(db.url(), 1, "pgdispatch-bench-renew")) {
                var reg = new NodeStore(pool).register(OWNER, InetAddress.getLocalHost().getHostName(),
                        ProcessHandle.current().pid(), Dispatcher.VERSION, List.of("default"), List.of("sleep"),
                        Duration.ofSeconds(90), false, true);
                incarnation = ((NodeStore.Registration.Registered) reg).incarnation().toString();
                List<ClaimedTask> claimed = new TaskStore(pool).claimDue(new ClaimRequest(OWNER, List.of("default"),
                        Map.of("sleep", Duration.ofMinutes(10)), h, 3));
                for (ClaimedTask t : claimed) held.add(new HeldLease(t.id(), t.leaseToken(), t.lease(), false, Duration.ZERO, t.kind()));
                if (held.size() != h) throw new IllegalStateException("claimed " + held.size() + " of " + h);
            }
            try (Database pool = Database.open(db.url(), 1, "pgdispatch-bench-renew")) {
                new TaskStore(pool).renewHeld(OWNER, incarnation, held, RULES); // first tick: moves rows that do not fit their page
            }
            // the same pool, warm-up and close with and without the measured ticks: the difference is the ticks
            long overhead = ticks(db, incarnation, held, 0, null)[0];
            double[] ms = new double[TICKS];
            long[] m = ticks(db, incarnation, held, TICKS, ms);
            Arrays.sort(ms);
            f.put("tick_ms_" + h, ms[TICKS / 2]);
            statements += m[0] - overhead;
            ticks += TICKS;
            updates += m[1];
            hot += m[2];
        }
        int most = o.leases().stream().mapToInt(Integer::intValue).max().orElseThrow();
        f.put("tick_ms", f.get("tick_ms_" + most));
        heartbeats(db, f); // on the rows of the last preload, before the node's run replaces them
        node(db, env, most, o.batch(), f);
        f.put("statements_per_tick", (double) statements / ticks);
        f.put("task_updates", updates);
        f.put("hot_updates", hot);
        f.put("hot_pct", 100.0 * hot / Math.max(1, updates));
        f.put("statements_from", db.countSource());
        return new Run(f, List.of());
    }
}

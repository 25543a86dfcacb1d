package pgdispatch.bench;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.maintenance.Reaper;
import pgdispatch.runtime.Dispatcher;

/**
 * {@code recovery}: node A holds M long {@code sleep} tasks, node B (idle, M workers) is running; A is
 * halted ({@link Dispatcher#halt()}: its threads stop and its pool closes, so its connections are cut
 * and it writes nothing more). Measured: seconds from the halt (database clock) until the last of the M
 * tasks started on B ({@code started_at}), with short timings. With the default timings the same path
 * takes {@code TASK_NODE_TIMEOUT_S} + one reaper interval ({@code TASK_RENEW_S}) + B's next idle claim
 * poll (4 x {@code TASK_POLL_MS});
 * that formula is printed beside the measurement.
 */
final class RecoveryScenario implements Scenario {
    /** Short timings: lease 10 s renewed every 1 s; a node is dead 3 s after its last heartbeat. */
    static final Map<String, String> SHORT = Map.of("TASK_LEASE_S", "10", "TASK_RENEW_S", "1", "TASK_STALE_S", "5",
            "TASK_NODE_TIMEOUT_S", "3", "TASK_DRAIN_S", "0",
            // a socket timeout must not exceed the 3 s node timeout: off, so a slow statement is not cut
            "PGDISPATCH_SOCKET_TIMEOUT_S", "0");

    @Override
    public String name() {
        return "recovery";
    }

    @Override
    public String headline() {
        return "recovery_s";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return f.get("tasks") + " tasks of a halted node running again on the survivor after " + Bench.num(f.get("recovery_s"))
                + " s (node timeout " + f.get("node_timeout_s") + " s + reaper interval " + f.get("renew_s")
                + " s + poll); at default timings the formula gives " + Bench.num(f.get("default_formula_s")) + " s";
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        int m = o.recoveryTasks();
        db.preload(m, "sleep", "{\"ms\": 600000}");
        double recovery;
        try (BenchNodes nodes = new BenchNodes()) {
            Dispatcher a = nodes.add(BenchNodes.config(env, db.url(), "bench-a", m, SHORT), o.batch());
            awaitHeld(a, m);
            Dispatcher b = nodes.add(BenchNodes.config(env, db.url(), "bench-b", m, SHORT), o.batch());
            double haltedAt = db.number("SELECT extract(epoch FROM clock_timestamp())");
            a.halt();
            awaitHeld(b, m);
            recovery = db.number("SELECT extract(epoch FROM max(started_at)) FROM tasks WHERE owner_id = 'bench-b'") - haltedAt;
            b.halt(); // its tasks sleep for minutes: no drain
        }
        DispatcherConfig shortCfg = BenchNodes.config(env, db.url(), "x", 1, SHORT);
        DispatcherConfig defaults = BenchNodes.config(env, db.url(), "x", 1, Map.of());
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("tasks", m);
        f.put("recovery_s", recovery);
        f.put("lease_s", shortCfg.lease().toSeconds());
        f.put("renew_s", shortCfg.renewInterval().toSeconds());
        f.put("node_timeout_s", shortCfg.nodeTimeout().toSeconds());
        // node timeout + one reaper interval + the idle survivor's poll (backed off to 4x while LISTEN is up)
        f.put("expected_max_s", shortCfg.nodeTimeout().toSeconds() + Reaper.intervalFor(shortCfg.renewInterval()).toSeconds()
                + 4 * shortCfg.pollInterval().toMillis() / 1000.0);
        f.put("default_formula_s", defaults.nodeTimeout().toSeconds() + Reaper.intervalFor(defaults.renewInterval()).toSeconds()
                + 4 * defaults.pollInterval().toMillis() / 1000.0);
        return new Run(f, List.of());
    }

    private static void awaitHeld(Dispatcher d, int m) throws InterruptedException {
        long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (d.held() < m) {
            if (System.nanoTime() > until) throw new IllegalStateException(d.nodeId() + " holds " + d.held() + " of " + m);
            Thread.sleep(5); // reading the node's in-process lease count
        }
    }
}

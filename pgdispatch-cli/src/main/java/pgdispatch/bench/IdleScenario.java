package pgdispatch.bench;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.config.DispatcherConfig;

/**
 * {@code idle}: the statements one node with nothing to do sends over T seconds. Measured as the server's
 * count for a start + T s + stop, minus the count for a start + stop with no wait (the start-up and stop
 * statements), divided by T. The node's heartbeat (one statement per {@code TASK_RENEW_S}) is reported
 * apart.
 */
final class IdleScenario implements Scenario {
    @Override
    public String name() {
        return "idle";
    }

    @Override
    public String headline() {
        return "statements_per_s";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return Bench.num(f.get("statements_per_s")) + " statements/s from an idle node over " + f.get("seconds") + " s ("
                + Bench.num(f.get("outside_heartbeats_per_s")) + "/s besides its heartbeat every "
                + f.get("renew_s") + " s)";
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        int seconds = o.secondsOr(30);
        long startStop = window(db, o, env, 0);
        long withWait = window(db, o, env, seconds);
        DispatcherConfig cfg = BenchNodes.config(env, db.url(), "bench-idle", o.concurrency(), Map.of());
        double perS = (double) (withWait - startStop) / seconds;
        double heartbeats = 1.0 / cfg.renewInterval().toSeconds();
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("seconds", seconds);
        f.put("statements_per_s", perS);
        f.put("heartbeats_per_s", heartbeats);
        f.put("outside_heartbeats_per_s", perS - heartbeats);
        f.put("start_stop_statements", startStop);
        f.put("poll_ms", cfg.pollInterval().toMillis());
        f.put("renew_s", cfg.renewInterval().toSeconds());
        f.put("statements_from", db.countSource());
        return new Run(f, List.of());
    }

    private static long window(ScratchDatabase db, BenchOptions o, Map<String, String> env, int seconds) throws Exception {
        var before = db.counters();
        try (BenchNodes nodes = BenchNodes.start(env, db.url(), "bench-idle", 1, o.concurrency(), o.batch(), Map.of())) {
            Thread.sleep(seconds * 1000L); // the measured idle window
        }
        return db.counters().statementsSince(before);
    }
}

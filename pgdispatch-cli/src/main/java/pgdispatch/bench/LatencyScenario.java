package pgdispatch.bench;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import pgdispatch.api.TaskClient;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;

/**
 * {@code latency}: open-loop arrivals, R {@code noop} tasks a second for T seconds, each enqueued through
 * {@link TaskClient} at its scheduled instant (by a pool of senders, so a slow insert does not delay the
 * next arrival) while one node runs; enqueue→start ({@code started_at - created_at}) and enqueue→finish
 * ({@code finished_at - created_at}) percentiles from the rows, both times from the database's clock.
 */
final class LatencyScenario implements Scenario {
    private static final int SENDERS = 8;

    @Override
    public String name() {
        return "latency";
    }

    @Override
    public String headline() {
        return "start_p50_ms";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return "at " + Bench.num(f.get("achieved_rate")) + " tasks/s: enqueue->start p50 " + Bench.num(f.get("start_p50_ms"))
                + " ms, p99 " + Bench.num(f.get("start_p99_ms")) + " ms; enqueue->finish p50 "
                + Bench.num(f.get("finish_p50_ms")) + " ms, p99 " + Bench.num(f.get("finish_p99_ms")) + " ms";
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        int seconds = o.secondsOr(10);
        long total = (long) o.rate() * seconds;
        String payload = o.payload();
        AtomicLong failed = new AtomicLong();
        try (BenchNodes nodes = BenchNodes.start(env, db.url(), "bench-latency", 1, o.concurrency(), o.batch(), Map.of());
             Database pool = Database.open(db.url(), SENDERS, "pgdispatch-bench-producer")) {
            TaskClient client = new TaskClient(new TaskStore(pool), 1 << 20);
            // warm the producer's connections and statements, and the node's path, before the clock starts
            for (int i = 0; i < SENDERS; i++) client.enqueue(TaskClient.Enqueue.of("noop", payload));
            nodes.awaitFinished(SENDERS, Duration.ofSeconds(30));
            db.exec("TRUNCATE tasks, task_event_log"); // keeps the nodes row; the measured rows start from here
            ExecutorService senders = Executors.newFixedThreadPool(SENDERS);
            long start = System.nanoTime();
            long period = 1_000_000_000L / o.rate();
            for (long i = 0; i < total; i++) {
                long due = start + i * period;
                long wait;
                while ((wait = due - System.nanoTime()) > 0) LockSupport.parkNanos(wait); // the arrival schedule
                senders.execute(() -> {
                    try {
                        client.enqueue(TaskClient.Enqueue.of("noop", payload));
                    } catch (RuntimeException e) {
                        failed.incrementAndGet();
                    }
                });
            }
            senders.shutdown();
            senders.awaitTermination(60, TimeUnit.SECONDS);
            nodes.awaitFinished(SENDERS + total - failed.get(), Duration.ofSeconds(60 + seconds));
        }
        var r = db.rows("""
                WITH t AS (
                    SELECT extract(epoch FROM started_at - created_at) * 1000 AS s,
                           extract(epoch FROM finished_at - created_at) * 1000 AS f, created_at
                      FROM tasks WHERE status = 'succeeded')
                SELECT count(*) AS n,
                       count(*) / nullif(extract(epoch FROM max(created_at) - min(created_at)), 0) AS rate,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS s50,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS s95,
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS s99, max(s) AS smax,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY f) AS f50,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY f) AS f95,
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY f) AS f99, max(f) AS fmax
                  FROM t
                """).get(0);
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("rate", o.rate());
        f.put("seconds", seconds);
        f.put("tasks", ((Number) r.get("n")).longValue());
        f.put("enqueue_failures", failed.get());
        f.put("achieved_rate", dbl(r.get("rate")));
        for (String k : List.of("s50:start_p50_ms", "s95:start_p95_ms", "s99:start_p99_ms", "smax:start_max_ms",
                "f50:finish_p50_ms", "f95:finish_p95_ms", "f99:finish_p99_ms", "fmax:finish_max_ms")) {
            String[] kv = k.split(":");
            f.put(kv[1], dbl(r.get(kv[0])));
        }
        return new Run(f, List.of());
    }

    private static double dbl(Object v) {
        return v == null ? Double.NaN : ((Number) v).doubleValue();
    }
}

package pgdispatch.bench;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code drain}: N {@code noop} tasks preloaded, K nodes of C workers started, tasks per second from the
 * first claim to the last completion (the rows' {@code started_at} and {@code finished_at}, the
 * database's clock), and what it cost the database and the node per task. The first run in a JVM is
 * preceded by unmeasured warm-up drains (a fifth of N, at most 20,000, until the JIT compiler's share of
 * the node's CPU is small: {@link #warmUp}), so the figures are the steady state of a long-running node;
 * the first warm-up drain's own client CPU is reported beside them ({@code cold_client_*}).
 */
final class DrainScenario implements Scenario {
    @Override
    public String name() {
        return "drain";
    }

    @Override
    public String headline() {
        return "tasks_per_s";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return Bench.num(f.get("tasks_per_s")) + " tasks/s with " + f.get("nodes") + " node(s) x " + f.get("concurrency")
                + " workers, " + Bench.num(f.get("statements_per_task")) + " statements and "
                + Bench.num(f.get("task_updates_per_task")) + " row updates per task; CPU per task: node "
                + Bench.num(f.get("client_cpu_us_per_task")) + " us"
                + (f.containsKey("server_cpu_us_per_task") ? ", server " + Bench.num(f.get("server_cpu_us_per_task")) + " us" : "");
    }

    /** Set once this JVM has drained its warm-up batches: the JIT compiles the hot path before it is measured. */
    private static final AtomicBoolean warm = new AtomicBoolean();
    /** Most warm-up drains before the first measured one. */
    static final int MAX_WARM_UP_ROUNDS = 10;
    /** A warm-up drain whose JIT share of the client CPU is below this ends the warm-up. */
    static final double WARM_JIT_SHARE = 0.10;

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        Map<String, Object> warmUp = warm.compareAndSet(false, true) ? warmUp(db, o, env) : Map.of();
        db.preload(o.tasks(), "noop", o.payload());
        var before = db.counters();
        var c0 = ClientCpu.Reading.now();
        long serverCpu = ServerCpu.nanos(db.url().host());
        double claimSeconds = 0;
        ClientCpu.Reading c1, c2;
        try (BenchNodes nodes = BenchNodes.start(env, db.url(), "bench", o.nodes(), o.concurrency(), o.batch(), Map.of())) {
            c1 = ClientCpu.Reading.now();
            nodes.awaitFinished(o.tasks(), Duration.ofSeconds(60 + o.tasks() / 1000));
            c2 = ClientCpu.Reading.now();
            for (var d : nodes.nodes()) {
                var t = d.metrics().registry().find("pgdispatch.claim").timer();
                if (t != null) claimSeconds += t.totalTime(java.util.concurrent.TimeUnit.NANOSECONDS) / 1e9;
            }
        }
        var c3 = ClientCpu.Reading.now();
        Double serverUs = ServerCpu.perTask(serverCpu, ServerCpu.nanos(db.url().host()), o.tasks());
        var after = db.counters();
        var f = figures(db, o, before, after, o.nodes());
        // how much of the drain each node's claimer spent waiting for claim statements
        f.put("claimer_busy_pct", 100 * claimSeconds / o.nodes() / (double) f.get("seconds"));
        // the nodes' steady state: from started to every task written; starting and stopping them apart
        f.putAll(c2.perTask(c1, o.tasks(), "client_"));
        f.put("client_start_stop_cpu_ms", ((c1.total() - c0.total()) + (c3.total() - c2.total())) / 1e6);
        f.putAll(warmUp);
        if (serverUs != null) f.put("server_cpu_us_per_task", serverUs);
        return new Run(f, List.of());
    }

    /**
     * Unmeasured drains of {@link #warmUpTasks} tasks each, every one by freshly started nodes as the
     * measured drain is, until the JIT compiler's share of a drain's client CPU falls below
     * {@link #WARM_JIT_SHARE} or {@link #MAX_WARM_UP_ROUNDS} ran (as JMH warms up before it measures).
     * Reports the rounds and the first (cold) drain's client CPU per task: what a freshly started JVM pays
     * while the JIT compiles its hot path.
     */
    private static Map<String, Object> warmUp(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        int w = warmUpTasks(o);
        Map<String, Object> f = new LinkedHashMap<>();
        int rounds = 0;
        while (rounds < MAX_WARM_UP_ROUNDS) {
            rounds++;
            db.preload(w, "noop", o.payload());
            ClientCpu.Reading c1, c2;
            try (BenchNodes nodes = BenchNodes.start(env, db.url(), "bench-warmup", o.nodes(), o.concurrency(), o.batch(), Map.of())) {
                c1 = ClientCpu.Reading.now();
                nodes.awaitFinished(w, Duration.ofSeconds(60 + w / 1000));
                c2 = ClientCpu.Reading.now();
            }
            db.reset();
            var round = c2.perTask(c1, w, "");
            if (rounds == 1) round.forEach((k, v) -> f.put("cold_client_" + k, v));
            Object jit = round.get("jit_cpu_us_per_task");
            if (!(jit instanceof Double j) || j < WARM_JIT_SHARE * (double) round.get("cpu_us_per_task")) break;
        }
        f.put("warmup_rounds", rounds);
        f.put("warmup_tasks", w);
        return f;
    }

    /** Tasks drained unmeasured before the first measured run of a JVM: a fifth of the run, at most 20,000. */
    static int warmUpTasks(BenchOptions o) {
        return Math.max(1, Math.min(20_000, o.tasks() / 5));
    }

    /** The figures drain and raw share: throughput from the rows, costs from the server's counters. */
    static Map<String, Object> figures(ScratchDatabase db, BenchOptions o, ScratchDatabase.Counters before,
                                       ScratchDatabase.Counters after, int nodes) {
        var r = db.rows("SELECT count(*) FILTER (WHERE status = 'succeeded') AS ok,"
                + " extract(epoch FROM max(finished_at) - min(started_at))::float8 AS s FROM tasks").get(0);
        long ok = ((Number) r.get("ok")).longValue();
        if (ok != o.tasks()) throw new IllegalStateException(ok + " of " + o.tasks() + " tasks succeeded");
        double seconds = ((Number) r.get("s")).doubleValue();
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("tasks", o.tasks());
        f.put("nodes", nodes);
        f.put("concurrency", o.concurrency());
        f.put("batch", o.batch());
        f.put("tasks_per_s", o.tasks() / seconds);
        f.put("seconds", seconds);
        f.put("statements_per_task", (double) after.statementsSince(before) / o.tasks());
        f.put("task_updates_per_task", (double) after.updates("tasks", before) / o.tasks());
        // rows written to the log (V13: none on the happy path) and rows the audit trail shows (2: claimed, succeeded)
        f.put("events_per_task", (double) after.inserts("task_event_log", before) / o.tasks());
        // claim and completion change status (in every partial index's predicate): never HOT, by design
        f.put("task_hot_pct", 100.0 * after.hotUpdates("tasks", before) / Math.max(1, after.updates("tasks", before)));
        // one transaction, one now(): the distinct event times are the claim and completion statements
        var b = db.rows("SELECT count(DISTINCT at) FILTER (WHERE event = 'claimed') AS claims,"
                + " count(DISTINCT at) FILTER (WHERE event = 'succeeded') AS completions, count(*) AS shown FROM task_events").get(0);
        f.put("events_shown_per_task", ((Number) b.get("shown")).doubleValue() / o.tasks());
        var other = db.rows("SELECT event || ':' || count(*) AS e FROM task_events"
                + " WHERE event NOT IN ('claimed', 'succeeded') GROUP BY event ORDER BY event");
        f.put("other_events", other.isEmpty() ? "none" : String.join(",", other.stream().map(row -> (String) row.get("e")).toList()));
        f.put("claim_batch_avg", (double) o.tasks() / ((Number) b.get("claims")).longValue());
        f.put("complete_batch_avg", (double) o.tasks() / ((Number) b.get("completions")).longValue());
        f.put("statements_from", db.countSource());
        return f;
    }
}

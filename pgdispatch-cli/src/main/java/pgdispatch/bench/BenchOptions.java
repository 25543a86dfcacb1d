package pgdispatch.bench;

import java.util.List;

/**
 * What one {@code bench} run measures: the scenarios and their sizes. Every size has the default the
 * issue names; the smoke test passes tiny ones.
 *
 * @param tasks        drain/raw: tasks preloaded (default 100,000)
 * @param nodeCounts   drain/raw: in-process nodes, one measurement per count (default 1; {@code --nodes 1,2,4,8})
 * @param concurrency  worker slots per node (default 32)
 * @param rate         latency: arrivals per second (default 500)
 * @param seconds      latency and idle: length of the window, null for each scenario's default (10 s, 30 s)
 * @param repeat       runs of each scenario; lines report the median and the spread (default 1)
 * @param batch        raw: claim and complete batch; drain: the runtime's largest claim (default 500)
 * @param payloadBytes size of each task's JSON payload (default 2: {@code {}})
 * @param leases       renew: held-lease counts to renew in one tick (default 1,000 and 10,000)
 * @param recoveryTasks recovery: tasks the halted node holds (default 100)
 * @param backlog      backlog: pending rows for the big-backlog claim (default 1,000,000)
 */
public record BenchOptions(List<String> scenarios, int tasks, List<Integer> nodeCounts, int concurrency, int rate, Integer seconds,
                           int repeat, int batch, int payloadBytes, List<Integer> leases, int recoveryTasks,
                           int backlog) {
    public static final List<String> ALL = List.of("drain", "raw", "latency", "renew", "idle", "recovery", "backlog", "limit");

    public BenchOptions {
        scenarios = List.copyOf(scenarios);
        leases = List.copyOf(leases);
        nodeCounts = List.copyOf(nodeCounts);
        if (nodeCounts.isEmpty()) throw new IllegalArgumentException("--nodes is empty: give one or more counts, e.g. 1,2,4,8");
        for (String s : scenarios) {
            if (!ALL.contains(s)) throw new IllegalArgumentException("--scenario=" + s + " must be one of " + String.join("|", ALL) + "|all");
        }
        positive("--tasks", tasks);
        for (int n : nodeCounts) positive("--nodes", n);
        positive("--concurrency", concurrency);
        positive("--rate", rate);
        if (seconds != null) positive("--seconds", seconds);
        positive("--repeat", repeat);
        positive("--batch", batch);
        if (payloadBytes < 2) throw new IllegalArgumentException("--payload-bytes=" + payloadBytes + " must be at least 2 ({})");
        for (int h : leases) positive("--leases", h);
        positive("--recovery-tasks", recoveryTasks);
        positive("--backlog", backlog);
    }

    private static void positive(String flag, int v) {
        if (v < 1) throw new IllegalArgumentException(flag + "=" + v + " must be a positive whole number");
    }

    /** The node count of this measurement (the first of {@code --nodes} until {@link #withNodes} picks another). */
    int nodes() {
        return nodeCounts.get(0);
    }

    /** The same options measured with {@code n} nodes. */
    BenchOptions withNodes(int n) {
        return new BenchOptions(scenarios, tasks, List.of(n), concurrency, rate, seconds, repeat, batch, payloadBytes, leases,
                recoveryTasks, backlog);
    }

    int secondsOr(int def) {
        return seconds == null ? def : seconds;
    }

    /** A JSON object of exactly {@code payloadBytes} bytes: {@code {"p":"xxx…"}}, or {@code {}}. */
    String payload() {
        if (payloadBytes < 9) return "{}";
        return "{\"p\":\"" + "x".repeat(payloadBytes - 8) + "\"}";
    }
}

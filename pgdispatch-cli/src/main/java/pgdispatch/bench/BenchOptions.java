package pgdispatch.bench;

import java.util.List;

/**
 * What one {@code bench} run measures: the scenarios and their sizes. Every size has the default the
 * issue names; the smoke test passes tiny ones.
 *
 * @param tasks        drain/raw: tasks preloaded (default 100,000)
 * @param nodes        drain/raw: in-process nodes (default 1)
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
public record BenchOptions(List<String> scenarios, int tasks, int nodes, int concurrency, int rate, Integer seconds,
                           int repeat, int batch, int payloadBytes, List<Integer> leases, int recoveryTasks,
                           int backlog) {
    public static final List<String> ALL = List.of("drain", "raw", "latency", "renew", "idle", "recovery", "backlog", "limit");

    public BenchOptions {
        scenarios = List.copyOf(scenarios);
        leases = List.copyOf(leases);
        for (String s : scenarios) {
            if (!ALL.contains(s)) throw new IllegalArgumentException("--scenario=" + s + " must be one of " + String.join("|", ALL) + "|all");
        }
        positive("--tasks", tasks);
        positive("--nodes", nodes);
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

    int secondsOr(int def) {
        return seconds == null ? def : seconds;
    }

    /** A JSON object of exactly {@code payloadBytes} bytes: {@code {"p":"xxx…"}}, or {@code {}}. */
    String payload() {
        if (payloadBytes < 9) return "{}";
        return "{\"p\":\"" + "x".repeat(payloadBytes - 8) + "\"}";
    }
}

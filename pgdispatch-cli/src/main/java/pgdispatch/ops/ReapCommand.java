package pgdispatch.ops;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.maintenance.Reaper;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Database;
import pgdispatch.store.StaleTask;
import pgdispatch.store.TaskStore;

/**
 * {@code reap}: the emergency cleanup of tasks stuck RUNNING, one pass of the nodes' own {@link Reaper}
 * ({@code --dry-run}: its plan, nothing changed).
 */
@Command(name = "reap", mixinStandardHelpOptions = true,
        description = "Requeue (or quarantine, past the requeue budget) stale RUNNING tasks now: the nodes' reaper, run once.")
final class ReapCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--dry-run", description = "List what would be requeued or quarantined and why; change nothing")
    boolean dryRun;

    @Option(names = "--stale-seconds", paramLabel = "S",
            description = "A running task not renewed for S seconds is stale (default TASK_STALE_S)")
    String staleSeconds;

    @Option(names = "--max-requeue", paramLabel = "N",
            description = "Requeue budget per task; past it the task is quarantined (default TASK_MAX_REQUEUE)")
    String maxRequeue;

    @Option(names = "--batch", paramLabel = "B", description = "Rows per transaction (default TASK_REAP_BATCH)")
    String batch;

    @Option(names = "--json", description = "Print JSON")
    boolean json;

    @Override
    public Integer call() {
        DispatcherConfig cfg = Env.config();
        Reaper.Config rc = reaperConfig(cfg);
        try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-reap")) {
            db.requireCurrentSchema();
            Reaper reaper = new Reaper(rc, new TaskStore(db), DispatchMetrics.noop());
            PrintWriter out = spec.commandLine().getOut();
            if (dryRun) {
                List<StaleTask> plan = reaper.plan(rc.batch() * Reaper.MAX_BATCHES_PER_RUN);
                print(out, rc, plan, true);
                return Main.OK;
            }
            Reaper.Result r = reaper.runOnce();
            if (r.skipped()) {
                spec.commandLine().getErr().println("pgdispatch: another reaper holds the sweep lock (a node is sweeping"
                        + " right now); nothing changed, run the command again");
                return Main.FAILURE;
            }
            print(out, rc, r.rows(), false);
            return Main.OK;
        }
    }

    /** The configured reaper settings with this command's overrides; every bad override in one line. */
    private Reaper.Config reaperConfig(DispatcherConfig cfg) {
        List<String> problems = new ArrayList<>();
        Duration stale = cfg.stale();
        int budget = cfg.maxRequeue();
        int rows = cfg.reapBatch();
        try {
            if (staleSeconds != null) stale = Duration.ofSeconds(Flags.longIn("--stale-seconds", staleSeconds, 1, 31_536_000));
        } catch (IllegalArgumentException e) {
            problems.add(e.getMessage());
        }
        try {
            // 0 is a valid budget, as for TASK_MAX_REQUEUE: quarantine on the first staleness
            if (maxRequeue != null) budget = Flags.intIn("--max-requeue", maxRequeue, 0, 1000);
        } catch (IllegalArgumentException e) {
            problems.add(e.getMessage());
        }
        try {
            if (batch != null) rows = Flags.intIn("--batch", batch, 1, 100_000);
        } catch (IllegalArgumentException e) {
            problems.add(e.getMessage());
        }
        if (problems.isEmpty() && stale.compareTo(cfg.renewInterval()) <= 0) {
            // shorter than the renewal interval, a healthy task between two renewals would count as stale and run twice
            problems.add((staleSeconds != null ? "--stale-seconds=" + staleSeconds : "TASK_STALE_S=" + stale.toSeconds())
                    + " must be longer than TASK_RENEW_S=" + cfg.renewInterval().toSeconds()
                    + " (a healthy task's heartbeat is up to one renewal interval old)");
        }
        if (!problems.isEmpty()) throw new IllegalArgumentException(String.join("; ", problems));
        return new Reaper.Config(cfg.renewInterval(), stale, cfg.nodeTimeout(), budget, rows);
    }

    private void print(PrintWriter out, Reaper.Config rc, List<StaleTask> rows, boolean planOnly) {
        long requeue = rows.stream().filter(t -> t.action().equals("requeue")).count();
        long quarantine = rows.size() - requeue;
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dry_run", planOnly);
            m.put("stale_seconds", rc.stale().toSeconds());
            m.put("node_timeout_seconds", rc.nodeTimeout().toSeconds());
            m.put("max_requeue", rc.maxRequeue());
            m.put("batch", rc.batch());
            m.put("requeue", requeue);
            m.put("quarantine", quarantine);
            m.put("tasks", rows.stream().map(t -> {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("id", t.id());
                x.put("previous_owner", t.owner());
                x.put("lease_token", t.leaseToken());
                x.put("action", t.action());
                x.put("reason", t.reason());
                return x;
            }).toList());
            out.println(Json.write(m));
            return;
        }
        String rule = "stale: lease expired, no renewal for " + rc.stale().toSeconds() + "s, or owner node silent for "
                + rc.nodeTimeout().toSeconds() + "s; requeue budget " + rc.maxRequeue();
        if (planOnly) {
            out.printf("dry run: %d stale running task(s): %d would be requeued, %d quarantined; nothing changed (%s)%n",
                    rows.size(), requeue, quarantine, rule);
        } else {
            out.printf("reaped %d stale running task(s): %d requeued, %d quarantined (%s)%n", rows.size(), requeue,
                    quarantine, rule);
        }
        if (rows.isEmpty()) return;
        out.printf("%-10s %-24s %6s %-10s %s%n", "TASK", "PREVIOUS_OWNER", "TOKEN", "ACTION", "REASON");
        for (StaleTask t : rows) {
            out.printf("%-10d %-24s %6d %-10s %s%n", t.id(), t.owner() == null ? "-" : t.owner(), t.leaseToken(),
                    t.action(), t.reason());
        }
    }
}

package pgdispatch.ops;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import pgdispatch.api.StuckPolicy;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.NodeStore;
import pgdispatch.store.StuckRules;
import pgdispatch.store.QueueStore;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskStatus;

/** {@code status}: queues, running leases, stale work, nodes: a table for people, {@code --json} for scripts. */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Per-queue counts and lag, running tasks with lease time left, stale work, nodes.")
final class StatusCommand implements Callable<Integer> {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .findAndRegisterModules();

    /**
     * The status command does not know the handlers' own policies: it counts as stuck what the default
     * {@link StuckPolicy} would judge, for every kind.
     */
    static final java.util.function.Function<DispatcherConfig, StuckRules> DEFAULT_RULE = cfg -> new StuckRules(
            Map.of("*", new StuckRules.Rule(StuckPolicy.DEFAULT_FACTOR, StuckPolicy.DEFAULT_FLOOR, false, false)),
            cfg.stale(), cfg.maxRequeue());

    @Spec
    CommandSpec spec;

    @Option(names = "--json", description = "Print JSON")
    boolean json;

    @Option(names = "--running", paramLabel = "N", defaultValue = "20", description = "Running tasks to list (default 20)")
    int runningLimit;

    @Override
    public Integer call() throws Exception {
        if (runningLimit < 0 || runningLimit > 10_000) {
            throw new IllegalArgumentException("--running=" + runningLimit + " must be from 0 to 10000");
        }
        DispatcherConfig cfg = Env.config();
        try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-status")) {
            print(spec.commandLine().getOut(), cfg, db, json, runningLimit);
            return Main.OK;
        }
    }

    /** The report on {@code db} (the demo ends with it too); {@code cfg} gives the stale and node timeouts. */
    static void print(PrintWriter out, DispatcherConfig cfg, Database db, boolean json, int runningLimit) throws Exception {
        String schema = db.requireCurrentSchema();
        TaskQueries q = new TaskQueries(db);
        List<TaskQueries.QueueStats> queues = q.queueStats(cfg.stale(), cfg.nodeTimeout());
        List<TaskQueries.RunningTask> running = q.running(runningLimit);
        List<NodeStore.Node> nodes = new NodeStore(db).list(cfg.nodeTimeout());
        Map<String, Long> events = q.eventCounts(Duration.ofHours(1));
        Map<String, Long> orphanKinds = q.pendingWithoutHandler(cfg.nodeTimeout());
        List<TaskQueries.KindLeases> leases = q.leaseStats(cfg.renewInterval(), cfg.nodeTimeout(), DEFAULT_RULE.apply(cfg));
        List<String> paused = new QueueStore(db.dataSource()).paused();
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("database", cfg.databaseUrl().toString());
            m.put("schema_version", schema);
            m.put("queues", queues.stream().map(s -> {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("queue", s.queue());
                x.put("paused", paused.contains(s.queue()));
                Map<String, Long> counts = new LinkedHashMap<>();
                for (TaskStatus st : TaskStatus.values()) counts.put(st.sql(), s.byStatus().get(st.sql()));
                x.put("counts", counts);
                x.put("lag_seconds", s.lagSeconds());
                x.put("stale", s.stale());
                x.put("requeued_total", s.requeuedTotal());
                return x;
            }).toList());
            m.put("paused_queues", paused);
            // snake_case like every other key of this document (docs/CLI.md), not the record's camelCase
            m.put("running", running.stream().map(r -> {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("id", r.id());
                x.put("queue", r.queue());
                x.put("kind", r.kind());
                x.put("owner", r.owner());
                x.put("lease_token", r.leaseToken());
                x.put("attempt", r.attempt());
                x.put("lease_seconds_left", r.leaseSecondsLeft());
                x.put("heartbeat_age_seconds", r.heartbeatAgeSeconds());
                return x;
            }).toList());
            m.put("leases", leases.stream().map(k -> {
                Map<String, Object> x = new LinkedHashMap<>(); // snake_case, as docs/CLI.md promises
                x.put("kind", k.kind());
                x.put("running", k.running());
                x.put("expiring", k.expiring());
                x.put("stale", k.stale());
                x.put("stuck", k.stuck());
                x.put("silence_max_seconds", k.silenceMaxSeconds());
                x.put("renewals_avg", k.renewalsAvg());
                x.put("renewals_max", k.renewalsMax());
                x.put("extensions_max", k.extensionsMax());
                return x;
            }).toList());
            m.put("nodes", nodes.stream().map(n -> {
                Map<String, Object> x = new LinkedHashMap<>(); // fixed key order, for people reading it
                x.put("node_id", n.nodeId());
                x.put("host", n.host());
                x.put("pid", n.pid());
                x.put("alive", n.alive());
                x.put("stopped", n.stoppedAt() != null);
                x.put("seconds_since_seen", n.secondsSinceSeen());
                x.put("queues", n.queues());
                x.put("kinds", n.kinds());
                // what the node's readiness said at its last report (null = ready), stored on its row
                x.put("ready", n.ready());
                x.put("health", n.health());
                return x;
            }).toList());
            m.put("events_last_hour", events);
            m.put("pending_kinds_without_live_handler", orphanKinds);
            out.println(JSON.writeValueAsString(m));
            return;
        }
        out.printf("pgdispatch status  database=%s  schema=%s%n%n", cfg.databaseUrl(), schema);
        out.printf("%-20s %9s %9s %9s %10s %9s %10s %12s %13s %12s %9s %7s %9s%n", "QUEUE", "WAITING", "PENDING", "RUNNING", "SUCCEEDED",
                "FAILED", "CANCELLED", "QUARANTINED", "COMPENSATING", "COMPENSATED", "LAG_S", "STALE", "REQUEUED");
        if (queues.isEmpty()) out.println("(no tasks)");
        for (var s : queues) {
            var c = s.byStatus();
            out.printf("%-20s %9d %9d %9d %10d %9d %10d %12d %13d %12d %9.1f %7d %9d%n", s.queue(), c.get("waiting"), c.get("pending"),
                    c.get("running"), c.get("succeeded"), c.get("failed"), c.get("cancelled"), c.get("quarantined"),
                    c.get("compensating"), c.get("compensated"), s.lagSeconds(), s.stale(), s.requeuedTotal());
        }
        if (!paused.isEmpty()) {
            out.printf("%nPAUSED QUEUES (no node claims from them; see: pgdispatch queues list) %s%n", String.join(", ", paused));
        }
        out.printf("%nRUNNING (soonest lease expiry first, %d shown)%n", running.size());
        if (!running.isEmpty()) {
            out.printf("%-10s %-14s %-16s %-20s %6s %8s %13s %14s%n", "TASK", "QUEUE", "KIND", "OWNER", "TOKEN", "ATTEMPT",
                    "LEASE_LEFT_S", "HEARTBEAT_AGE");
            for (var r : running) {
                out.printf("%-10d %-14s %-16s %-20s %6d %8d %13.1f %14.1f%n", r.id(), r.queue(), r.kind(), r.owner(),
                        r.leaseToken(), r.attempt(), r.leaseSecondsLeft(), r.heartbeatAgeSeconds());
            }
        }
        out.printf("%nLEASES by kind (expiring within TASK_RENEW_S=%d; stuck by the default StuckPolicy; silence since the"
                + " claim or the last progress report)%n", cfg.renewInterval().toSeconds());
        if (leases.isEmpty()) out.println("(nothing running)");
        else {
            out.printf("%-24s %8s %9s %6s %6s %14s %13s %13s %14s%n", "KIND", "RUNNING", "EXPIRING", "STALE", "STUCK",
                    "SILENCE_MAX_S", "RENEWALS_AVG", "RENEWALS_MAX", "EXTENSIONS_MAX");
            for (var k : leases) {
                out.printf("%-24s %8d %9d %6d %6d %14.1f %13.1f %13d %14d%n", k.kind(), k.running(), k.expiring(), k.stale(),
                        k.stuck(), k.silenceMaxSeconds(), k.renewalsAvg(), k.renewalsMax(), k.extensionsMax());
            }
        }
        out.printf("%nNODES (dead = not seen for TASK_NODE_TIMEOUT_S=%d)%n", cfg.nodeTimeout().toSeconds());
        if (nodes.isEmpty()) out.println("(none registered)");
        for (var n : nodes) {
            out.printf("%-24s %-7s host=%s pid=%d last_seen=%.1fs ago queues=%s kinds=%s%s%n", n.nodeId(),
                    n.stoppedAt() != null ? "STOPPED" : n.alive() ? "LIVE" : "DEAD", n.host(), n.pid(),
                    n.secondsSinceSeen(), String.join(",", n.queues()), String.join(",", n.kinds()),
                    n.stoppedAt() != null || n.ready() ? "" : "\n" + " ".repeat(25) + "NOT READY: " + n.health());
        }
        out.printf("%nEVENTS (last hour) %s%n", events.isEmpty() ? "(none)" : events);
        if (!orphanKinds.isEmpty()) {
            out.printf("%nWARNING pending tasks whose kind no live node handles: %s%n", orphanKinds);
        }
    }
}

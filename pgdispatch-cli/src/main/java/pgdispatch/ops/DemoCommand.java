package pgdispatch.ops;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.BooleanSupplier;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Database;
import pgdispatch.store.NodeStore;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskQueries.EventView;
import pgdispatch.store.TaskStore;

/**
 * {@code demo}: the lease story in under a minute on a scratch database. Two nodes share the work,
 * node-a crashes mid-task, node-b's reaper finds it dead and requeues what it held, node-b finishes
 * it; a failing task is retried, another one runs out of attempts. Narrated from {@code task_events}
 * as it happens, then the {@code status} report.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "A one-minute demonstration on a scratch database (dropped and re-created) on DATABASE_URL's server:"
                + " two nodes, one crashes mid-task, the other finishes its work.")
final class DemoCommand implements Callable<Integer> {
    /**
     * Timings short enough to see every step in seconds, with the relations the configuration demands. The
     * lease is well past the node timeout so the story is the dead node being detected (the lease
     * expiring is the slower, second line of defence), whatever the load of the machine.
     */
    static final Duration LEASE = Duration.ofSeconds(10);
    static final Duration RENEW = Duration.ofSeconds(1);
    static final Duration STALE = Duration.ofSeconds(15);
    static final Duration NODE_TIMEOUT = Duration.ofSeconds(3);
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(40);
    private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss.S");

    @Spec
    CommandSpec spec;

    @Option(names = "--database", paramLabel = "NAME", defaultValue = "pgdispatch_demo",
            description = "The scratch database to drop and re-create (default pgdispatch_demo); its name must contain 'demo'")
    String database;

    @Option(names = "--verbose", description = "Also show the nodes' own log lines (stderr)")
    boolean verbose;

    private PrintWriter out;
    private long startNanos;
    private final Map<Long, String> labels = new LinkedHashMap<>();
    private final Set<Long> narrated = new HashSet<>();
    private long lastEventId;
    private TaskQueries queries;

    @Override
    public Integer call() throws Exception {
        DispatcherConfig env = Env.config();
        if (!database.matches("[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}") || !database.toLowerCase().contains("demo")) {
            throw new IllegalArgumentException("--database=" + database + " must be a database name (letters, digits, _ $ -)"
                    + " containing 'demo': the demo drops and re-creates it");
        }
        if (database.equals(env.databaseUrl().database())) {
            throw new IllegalArgumentException("--database=" + database + " is DATABASE_URL's own database; the demo drops"
                    + " and re-creates its database, give it another name");
        }
        out = spec.commandLine().getOut();
        DatabaseUrl url = env.databaseUrl().withDatabase(database);
        DispatcherConfig base = DispatcherConfig.defaults(url)
                .withSocketTimeout(Duration.ZERO) // off: at most the 3 s node timeout, which a slow statement may need
                .withTimings(LEASE, RENEW, STALE, NODE_TIMEOUT)
                .withHttpPort(DispatcherConfig.HTTP_OFF);
        var logLevel = quietLogs();
        startNanos = System.nanoTime();
        try {
            return story(url, base);
        } finally {
            restoreLogs(logLevel);
        }
    }

    private int story(DatabaseUrl url, DispatcherConfig base) throws Exception {
        out.printf("pgdispatch demo: two nodes, a crash, and who finishes the work (database %s)%n", url);
        out.printf("timings: lease %ds, renewed every %ds, a node is dead after %ds without heartbeat, reaper every %ds%n%n",
                LEASE.toSeconds(), RENEW.toSeconds(), NODE_TIMEOUT.toSeconds(), RENEW.toSeconds());
        Database.recreate(url);
        try (Database db = Database.open(url, 3, "pgdispatch-demo")) {
            db.migrate();
            say("database " + url.database() + " created and migrated to schema version " + db.requireCurrentSchema());
            queries = new TaskQueries(db);
            enqueue(new TaskClient(new TaskStore(db), base.maxPayloadBytes()));

            // A short fixed backoff so the retry happens within the demo (the default starts at 1 s and doubles).
            RetryPolicy quickRetry = new RetryPolicy(Duration.ofSeconds(2), Duration.ofSeconds(2), 0);
            Dispatcher a = Dispatcher.builder(base.withNode("node-a", List.of("default"), 2)).retryPolicy(quickRetry).build();
            Dispatcher b = Dispatcher.builder(base.withNode("node-b", List.of("default"), 4)).retryPolicy(quickRetry).build();
            try {
                a.start();
                say("node-a started with 2 worker slots: it takes the two long sleeps, which have the lowest priority numbers");
                await("node-a to hold 2 tasks", () -> a.held() == 2);
                b.start();
                say("node-b started with 4 worker slots: it takes the rest");
                await("node-b to finish the three noop tasks", () -> succeeded() >= 3);

                List<TaskQueries.RunningTask> held = queries.running(100).stream()
                        .filter(r -> "node-a".equals(r.owner())).toList();
                a.halt();
                StringBuilder s = new StringBuilder();
                for (var r : held) {
                    s.append(String.format("%n             %s, lease token %d, its lease ends in %.1fs", label(r.id()),
                            r.leaseToken(), r.leaseSecondsLeft()));
                }
                say("node-a CRASHES (halt: its threads stop, nothing more is written, its rows stay RUNNING). It held:" + s);

                NodeStore nodes = new NodeStore(db);
                await("node-a to be seen dead", () -> nodes.find("node-a", NODE_TIMEOUT).map(n -> !n.alive()).orElse(true));
                say(String.format("node-a has not heartbeated for %.3fs (> TASK_NODE_TIMEOUT_S=%d): it counts as dead now,"
                                + " before its leases run out; the next reaper sweep takes its tasks back",
                        nodes.find("node-a", NODE_TIMEOUT).map(NodeStore.Node::secondsSinceSeen).orElse(0.0),
                        NODE_TIMEOUT.toSeconds()));
                await("every task to finish", () -> queries.tasks("pending", null, 1).isEmpty()
                        && queries.tasks("running", null, 1).isEmpty());
                b.stop();
                pump();
                say("node-b stopped (graceful: drained, marked stopped)");
                List<Long> heldIds = held.stream().map(TaskQueries.RunningTask::id).toList();
                return summary(db, base, heldIds);
            } finally {
                a.halt();
                b.stop();
            }
        }
    }

    private void enqueue(TaskClient client) {
        record Demo(String label, TaskClient.Enqueue task) {}
        List<Demo> tasks = List.of(
                new Demo("sleep 8s", TaskClient.Enqueue.of("sleep", "{\"ms\":8000}").priority(-10)),
                new Demo("sleep 6s", TaskClient.Enqueue.of("sleep", "{\"ms\":6000}").priority(-9)),
                new Demo("sleep 2s", TaskClient.Enqueue.of("sleep", "{\"ms\":2000}")),
                new Demo("sleep 3s", TaskClient.Enqueue.of("sleep", "{\"ms\":3000}")),
                new Demo("sleep 4s", TaskClient.Enqueue.of("sleep", "{\"ms\":4000}")),
                new Demo("noop", TaskClient.Enqueue.of("noop", "{}").priority(-5)),
                new Demo("noop", TaskClient.Enqueue.of("noop", "{}").priority(-5)),
                new Demo("noop", TaskClient.Enqueue.of("noop", "{}").priority(-5)),
                new Demo("fail once", TaskClient.Enqueue.of("fail", "{\"times\":1}")),
                new Demo("fail always, 2 attempts", TaskClient.Enqueue.of("fail", "{}").maxAttempts(2)));
        StringBuilder s = new StringBuilder();
        for (Demo d : tasks) {
            long id = client.enqueue(d.task());
            labels.put(id, "#" + id + " " + d.label());
            s.append(s.isEmpty() ? "" : ", ").append(labels.get(id));
        }
        say("enqueued " + tasks.size() + " tasks: " + s);
    }

    // ------------------------------------------------------------------ narration

    private void say(String line) {
        double at = (System.nanoTime() - startNanos) / 1e9;
        out.printf("%s %+6.1fs  %s%n", LocalTime.now().format(CLOCK), at, line);
        out.flush();
    }

    private String label(long id) {
        return labels.getOrDefault(id, "#" + id);
    }

    /** Polls the condition, narrating new events meanwhile; the demo fails if it does not come true in time. */
    private void await(String what, BooleanSupplier condition) throws InterruptedException {
        long until = System.nanoTime() + STEP_TIMEOUT.toNanos();
        while (true) {
            pump();
            if (condition.getAsBoolean()) {
                pump(); // what made it true is told before the next step
                return;
            }
            if (System.nanoTime() > until) {
                throw new IllegalStateException("demo: waited " + STEP_TIMEOUT.toSeconds() + "s for " + what + " in vain");
            }
            Thread.sleep(100); // polling interval of the narration, not a synchronisation
        }
    }

    private long succeeded() {
        return queries.tasks("succeeded", null, 1000).size();
    }

    /** Narrates the events not told yet (re-reading a window behind the last id: ids commit out of order). */
    private void pump() {
        for (EventView e : queries.eventsAfter(Math.max(0, lastEventId - 200), 1000)) {
            if (!narrated.add(e.id())) continue;
            lastEventId = Math.max(lastEventId, e.id());
            String line = tell(e);
            if (line != null) say(line);
        }
    }

    private String tell(EventView e) {
        JsonNode d = Json.embed(e.detail()) instanceof JsonNode j ? j : null;
        String task = label(e.taskId());
        String owner = e.owner() == null ? "?" : e.owner();
        return switch (e.event()) {
            case "claimed" -> owner + " claimed " + task + " (attempt " + text(d, "attempt") + ", lease token "
                    + e.leaseToken() + ")" + (d != null && d.hasNonNull("took_over_from")
                    ? ": taken over from " + d.get("took_over_from").asText() + ", whose lease had expired" : "");
            case "succeeded" -> task + " succeeded on " + owner;
            case "retry_scheduled" -> task + ": attempt " + text(d, "attempt") + " of " + text(d, "max_attempts")
                    + " failed on " + owner + " (" + text(d, "error") + "); retry scheduled";
            case "failed" -> task + ": attempt " + text(d, "attempt") + " of " + text(d, "max_attempts") + " failed on "
                    + owner + " (" + text(d, "error") + "): no attempts left, it is FAILED (dead-lettered)";
            case "requeued" -> "reaper: " + task + " requeued, previous owner " + owner + " (" + text(d, "reason") + ")";
            case "quarantined" -> "reaper: " + task + " quarantined (" + text(d, "reason") + ")";
            case "lease_lost" -> owner + " lost its lease on " + task;
            case "completion_refused" -> task + ": late result of " + owner + " refused (lease token " + e.leaseToken()
                    + " is no longer current)";
            default -> task + ": " + e.event() + " (" + owner + ")";
        };
    }

    private static String text(JsonNode d, String field) {
        return d == null || !d.hasNonNull(field) ? "?" : d.get(field).asText();
    }

    private int summary(Database db, DispatcherConfig cfg, List<Long> heldByA) throws Exception {
        List<String> wrong = new ArrayList<>();
        for (long id : heldByA) {
            var t = queries.task(id).orElseThrow();
            if (!t.status().equals("succeeded") || !"node-b".equals(t.owner())) {
                wrong.add(label(id) + " is " + t.status() + " (owner " + t.owner() + "), expected succeeded on node-b");
            }
        }
        long failed = queries.tasks("failed", null, 1000).size();
        long succeeded = succeeded();
        out.println();
        if (heldByA.isEmpty()) wrong.add("node-a held no task when it crashed");
        if (failed != 1) wrong.add(failed + " tasks failed, expected exactly 1 (the one with 2 attempts)");
        if (wrong.isEmpty()) {
            out.printf("The story: node-a crashed holding %d task(s); node-b's reaper saw node-a dead and requeued them;"
                    + " node-b finished them. %d tasks succeeded, 1 failed for good after its 2 attempts.%n",
                    heldByA.size(), succeeded);
        } else {
            out.println("The demo did not go as told: " + String.join("; ", wrong));
        }
        out.printf("%n--- pgdispatch status ---%n");
        StatusCommand.print(out, cfg, db, false, 20);
        out.printf("%nThe database %s is kept for you to explore, e.g.:%n  DATABASE_URL='%s' scripts/pgdispatch tasks show %d%n"
                        + "or in the dashboard (the crashed node's tasks and their timelines, the retries, the failure), at"
                        + " http://127.0.0.1:9464/ui/ after:%n  DATABASE_URL='%s' scripts/pgdispatch ui%n",
                db.url().database(), db.url(), heldByA.isEmpty() ? 1 : heldByA.get(0), db.url());
        return wrong.isEmpty() ? Main.OK : Main.FAILURE;
    }

    // ------------------------------------------------------------------ logs

    /** The nodes log each step at INFO on stderr; the narration tells the same, so they are quieted unless --verbose. */
    private Object quietLogs() {
        if (verbose || !(LoggerFactory.getLogger("pgdispatch") instanceof ch.qos.logback.classic.Logger l)) return null;
        ch.qos.logback.classic.Level before = l.getLevel();
        l.setLevel(ch.qos.logback.classic.Level.WARN);
        return before == null ? "inherit" : before;
    }

    private void restoreLogs(Object before) {
        if (before == null) return;
        var l = (ch.qos.logback.classic.Logger) LoggerFactory.getLogger("pgdispatch");
        l.setLevel(before instanceof ch.qos.logback.classic.Level lvl ? lvl : null);
    }
}

package pgdispatch.ops;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.BulkAction;
import pgdispatch.store.Database;
import pgdispatch.store.QueueStore;
import pgdispatch.store.TaskFilter;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskQueries.EventView;
import pgdispatch.store.TaskQueries.TaskView;
import pgdispatch.store.TaskStatus;
import pgdispatch.store.TaskStore;

/** {@code tasks list|show|retry|cancel|quarantine}: day-to-day work on single tasks, and on many at once by filter. */
@Command(name = "tasks", mixinStandardHelpOptions = true, description = "List, inspect, retry, cancel or quarantine tasks (one, or many by filter).",
        subcommands = {TasksCommand.ListTasks.class, TasksCommand.Show.class, TasksCommand.Retry.class,
                TasksCommand.Cancel.class, TasksCommand.Quarantine.class})
final class TasksCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required: list, show, retry, cancel or quarantine");
    }

    static final String STATUSES = Arrays.stream(TaskStatus.values()).map(TaskStatus::sql).collect(Collectors.joining(", "));

    /** Opens a small pool on the configured database, checked to be at this build's schema version. */
    static Database open(String purpose) {
        DispatcherConfig cfg = Env.config();
        Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-" + purpose);
        try {
            db.requireCurrentSchema();
            return db;
        } catch (RuntimeException e) {
            db.close();
            throw e;
        }
    }

    /** {@code tasks list}: newest first. */
    @Command(name = "list", mixinStandardHelpOptions = true, description = "List tasks, newest first.")
    static final class ListTasks implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--status", paramLabel = "S", description = "Only this status: waiting, pending, running, succeeded, failed, cancelled, quarantined, compensating, compensated")
        String status;

        @Option(names = "--queue", paramLabel = "Q", description = "Only this queue")
        String queue;

        @Option(names = "--kind", paramLabel = "K", description = "Only this kind")
        String kind;

        @Option(names = "--limit", paramLabel = "N", defaultValue = "50", description = "At most N tasks, 1-10000 (default 50)")
        String limit;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            if (status != null && Arrays.stream(TaskStatus.values()).noneMatch(s -> s.sql().equals(status))) {
                throw new IllegalArgumentException("--status=" + status + " is not a task status; valid: " + STATUSES);
            }
            int n = Flags.intIn("--limit", limit, 1, 10_000);
            try (Database db = open("tasks")) {
                List<TaskView> tasks = new TaskQueries(db).tasks(status, queue, kind, n);
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    out.println(Json.write(tasks.stream().map(TasksCommand::taskJson).toList()));
                    return Main.OK;
                }
                if (tasks.isEmpty()) {
                    out.println("(no tasks" + (status != null ? " with status " + status : "")
                            + (queue != null ? " in queue " + queue : "") + (kind != null ? " of kind " + kind : "") + ")");
                    return Main.OK;
                }
                out.printf("%-10s %-14s %-16s %-12s %8s %8s %-16s %-25s %s%n", "ID", "QUEUE", "KIND", "STATUS", "ATTEMPTS",
                        "REQUEUES", "OWNER", "RUN_AT", "LAST_ERROR");
                for (TaskView t : tasks) {
                    out.printf("%-10d %-14s %-16s %-12s %8s %8d %-16s %-25s %s%n", t.id(), t.queue(), t.kind(), t.status(),
                            t.attempts() + "/" + t.maxAttempts(), t.requeueCount(), t.owner() == null ? "-" : t.owner(),
                            Json.time(t.runAt()), t.lastError() == null ? "" : shorten(t.lastError(), 60));
                }
                return Main.OK;
            }
        }
    }

    static Map<String, Object> dependenciesJson(TaskQueries.Dependencies d) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("on_failure", d.onFailure());
        m.put("left", d.left());
        m.put("tasks", d.tasks().stream().map(v -> {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("id", v.id());
            e.put("kind", v.kind());
            e.put("status", v.status());
            return e;
        }).toList());
        return m;
    }

    /** {@code tasks show ID}: the row, what it depends on, and its events. */
    @Command(name = "show", mixinStandardHelpOptions = true, description = "Show one task with all its events.")
    static final class Show implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "ID", description = "Task id")
        String id;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            long taskId = Flags.taskId(id);
            try (Database db = open("tasks")) {
                TaskQueries q = new TaskQueries(db);
                Optional<TaskView> found = q.task(taskId);
                if (found.isEmpty()) return notFound(spec, taskId);
                TaskView t = found.get();
                List<EventView> events = q.events(taskId);
                Optional<TaskQueries.Dependencies> deps = q.dependencies(taskId);
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("task", taskJson(t));
                    deps.ifPresent(d -> m.put("dependencies", dependenciesJson(d)));
                    m.put("events", events.stream().map(TasksCommand::eventJson).toList());
                    out.println(Json.write(m));
                    return Main.OK;
                }
                out.printf("task %d%n", t.id());
                taskJson(t).forEach((k, v) -> {
                    if (!k.equals("id")) out.printf("  %-18s %s%n", k, v == null ? "-" : v);
                });
                deps.ifPresent(d -> {
                    out.printf("%nDEPENDS ON (%d, %d not ended; if one ends other than succeeded: %s)%n", d.tasks().size(),
                            d.left(), d.onFailure().equals("run") ? "run anyway" : "cancel");
                    out.printf("  %-8s %-24s %s%n", "ID", "KIND", "STATUS");
                    for (TaskQueries.DependencyView v : d.tasks()) {
                        out.printf("  %-8d %-24s %s%n", v.id(), v.kind() == null ? "-" : v.kind(),
                                v.status() == null ? "(deleted by retention)" : v.status());
                    }
                });
                out.printf("%nEVENTS (%d)%n", events.size());
                out.printf("  %-8s %-30s %-22s %-16s %6s %s%n", "ID", "AT", "EVENT", "OWNER", "TOKEN", "DETAIL");
                for (EventView e : events) {
                    out.printf("  %-8d %-30s %-22s %-16s %6s %s%n", e.id(), Json.time(e.at()), e.event(),
                            e.owner() == null ? "-" : e.owner(), e.leaseToken() == null ? "-" : e.leaseToken(),
                            e.detail() == null ? "" : e.detail());
                }
                return Main.OK;
            }
        }
    }

    /** {@code tasks retry ID} or {@code tasks retry --status S --kind K ...}. */
    @Command(name = "retry", mixinStandardHelpOptions = true,
            description = "Put finished tasks back to pending with a fresh attempt series: one task by ID (succeeded, failed,"
                    + " cancelled, quarantined, compensated), or every task a filter selects (by default failed, cancelled and"
                    + " quarantined ones) in one statement.")
    static final class Retry implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "ID", arity = "0..1", description = "Task id (or use the filter options)")
        String id;

        @Option(names = "--reason", paramLabel = "R", description = "Why; kept in each task's event")
        String reason;

        @CommandLine.Mixin
        BulkOptions bulk;

        @Override
        public Integer call() {
            if (bulk.chosen(id)) return bulk.run(spec, BulkAction.RETRY, reason);
            long taskId = Flags.taskId(id);
            return act(spec, taskId, "retry", "finished tasks (succeeded, failed, cancelled, quarantined, compensated); cancel a live one first",
                    store -> store.retry(taskId, reason), "pending (attempts reset; event retried_by_operator)");
        }
    }

    /** {@code tasks cancel ID} or by filter. */
    @Command(name = "cancel", mixinStandardHelpOptions = true,
            description = "Cancel waiting, pending or running tasks (a running handler learns it at its next lease renewal;"
                    + " one of a kind that compensates and had started goes on to compensating; tasks waiting for it are"
                    + " cancelled too): one by ID, or every task a filter selects in one statement.")
    static final class Cancel implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "ID", arity = "0..1", description = "Task id (or use the filter options)")
        String id;

        @Option(names = "--reason", paramLabel = "R", description = "Why; kept in last_error and the event")
        String reason;

        @CommandLine.Mixin
        BulkOptions bulk;

        @Override
        public Integer call() {
            if (bulk.chosen(id)) return bulk.run(spec, BulkAction.CANCEL, reason);
            long taskId = Flags.taskId(id);
            return act(spec, taskId, "cancel", "waiting, pending or running tasks outside their compensation",
                    store -> store.cancel(taskId, reason), "cancelled (event cancelled)");
        }
    }

    /** {@code tasks quarantine ID} or by filter. */
    @Command(name = "quarantine", mixinStandardHelpOptions = true,
            description = "Take tasks out of circulation for inspection: one by ID (waiting, pending, running, failed or"
                    + " compensating), or every waiting, pending, running or failed task a filter selects in one statement.")
    static final class Quarantine implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "ID", arity = "0..1", description = "Task id (or use the filter options)")
        String id;

        @Option(names = "--reason", paramLabel = "R", defaultValue = "no reason given", description = "Why; kept in last_error and the event")
        String reason;

        @CommandLine.Mixin
        BulkOptions bulk;

        @Override
        public Integer call() {
            if (bulk.chosen(id)) return bulk.run(spec, BulkAction.QUARANTINE, reason);
            long taskId = Flags.taskId(id);
            return act(spec, taskId, "quarantine", "waiting, pending, running, failed or compensating tasks",
                    store -> store.quarantine(taskId, reason), "quarantined (event quarantined)");
        }
    }

    /** The filter of the bulk form of retry, cancel and quarantine: one statement for every task it selects. */
    static final class BulkOptions {
        @Option(names = "--status", paramLabel = "S", description = "Only tasks in this status (default: every status the action applies to; retry: failed, cancelled, quarantined)")
        String status;

        @Option(names = "--kind", paramLabel = "K", description = "Only this kind")
        String kind;

        @Option(names = "--queue", paramLabel = "Q", description = "Only this queue")
        String queue;

        @Option(names = "--older-than", paramLabel = "AGE", description = "Only tasks whose last transition is older than AGE (90s, 15m, 2h, 7d, PT15M)")
        String olderThan;

        @Option(names = "--limit", paramLabel = "N", defaultValue = "1000", description = "At most N tasks, lowest id first (default 1000, at most 100000)")
        String limit;

        @Option(names = "--dry-run", description = "Only list the tasks that would change")
        boolean dryRun;

        @Option(names = "--by", paramLabel = "WHO", description = "Recorded in each event as the actor (default cli:<user>)")
        String by;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        /** True for the bulk form; refuses an ID together with filters, or neither. */
        boolean chosen(String id) {
            boolean filtered = status != null || kind != null || queue != null || olderThan != null;
            if (id != null && filtered) {
                throw new IllegalArgumentException("give a task ID or filter options (--status, --kind, --queue, --older-than), not both");
            }
            if (id == null && !filtered) {
                throw new IllegalArgumentException("give a task ID, or at least one of --status, --kind, --queue, --older-than");
            }
            if (id != null && (dryRun || json || by != null)) {
                throw new IllegalArgumentException("--dry-run, --json and --by apply to the filter form only");
            }
            return id == null;
        }

        int run(CommandSpec spec, BulkAction action, String reason) {
            TaskStatus requested = null;
            if (status != null) {
                requested = Arrays.stream(TaskStatus.values()).filter(s -> s.sql().equals(status)).findFirst()
                        .orElseThrow(() -> new IllegalArgumentException("--status=" + status + " is not a task status; valid: " + STATUSES));
            }
            if (queue != null) QueueStore.requireName(queue);
            TaskFilter filter = new TaskFilter(action.statuses(requested), kind, queue,
                    olderThan == null ? null : Flags.duration("--older-than", olderThan),
                    Flags.intIn("--limit", limit, 1, TaskFilter.MAX_LIMIT));
            List<TaskStore.MatchedTask> tasks;
            try (Database db = open("tasks")) {
                TaskStore store = new TaskStore(db);
                tasks = dryRun ? store.planMatching(action, filter)
                        : store.applyMatching(action, filter, reason, by == null ? QueuesCommand.defaultActor() : by);
            }
            boolean full = tasks.size() == filter.limit();
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("action", action.word());
                m.put("dry_run", dryRun);
                m.put("statuses", filter.statuses().stream().map(TaskStatus::sql).toList());
                m.put("count", tasks.size());
                m.put("limit_reached", full);
                m.put("reason", reason);
                m.put("tasks", tasks.stream().map(t -> {
                    Map<String, Object> x = new LinkedHashMap<>();
                    x.put("id", t.id());
                    x.put("queue", t.queue());
                    x.put("kind", t.kind());
                    x.put("from", t.from().sql());
                    return x;
                }).toList());
                out.println(Json.write(m));
                return Main.OK;
            }
            out.printf("%s%s: %d task(s) %s%n", action.word(), dryRun ? " --dry-run" : "", tasks.size(),
                    dryRun ? "would change (nothing changed)" : "changed, each with its event");
            if (!tasks.isEmpty()) {
                out.printf("%-10s %-14s %-16s %s%n", "ID", "QUEUE", "KIND", "FROM");
                for (TaskStore.MatchedTask t : tasks) {
                    out.printf("%-10d %-14s %-16s %s%n", t.id(), t.queue(), t.kind(), t.from().sql());
                }
            }
            if (full) out.printf("limit %d reached: more tasks may match; run the command again%n", filter.limit());
            return Main.OK;
        }
    }

    /** Runs one operator transition; a refusal names the task's current status and what the action allows. */
    private static int act(CommandSpec spec, long id, String action, String allowedFor,
                           java.util.function.Predicate<TaskStore> transition, String result) {
        try (Database db = open("tasks")) {
            TaskQueries q = new TaskQueries(db);
            String before = q.task(id).map(TaskView::status).orElse(null);
            if (transition.test(new TaskStore(db))) {
                spec.commandLine().getOut().printf("task %d: %s -> %s%n", id, before == null ? "?" : before, result);
                return Main.OK;
            }
            Optional<TaskView> now = q.task(id);
            if (now.isEmpty()) return notFound(spec, id);
            spec.commandLine().getErr().printf("pgdispatch: task %d is %s: %s is allowed only for %s%n", id,
                    now.get().status(), action, allowedFor);
            return Main.FAILURE;
        }
    }

    private static int notFound(CommandSpec spec, long id) {
        spec.commandLine().getErr().printf("pgdispatch: task %d not found%n", id);
        return Main.FAILURE;
    }

    static Map<String, Object> taskJson(TaskView t) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", t.id());
        m.put("queue", t.queue());
        m.put("kind", t.kind());
        m.put("status", t.status());
        m.put("priority", t.priority());
        m.put("attempts", t.attempts());
        m.put("max_attempts", t.maxAttempts());
        m.put("requeue_count", t.requeueCount());
        m.put("owner_id", t.owner());
        m.put("lease_token", t.leaseToken());
        m.put("run_at", Json.time(t.runAt()));
        m.put("lease_expires_at", Json.time(t.leaseExpiresAt()));
        m.put("last_heartbeat_at", Json.time(t.lastHeartbeatAt()));
        m.put("created_at", Json.time(t.createdAt()));
        m.put("finished_at", Json.time(t.finishedAt()));
        m.put("last_error", t.lastError());
        m.put("idempotency_key", t.idempotencyKey());
        m.put("payload", Json.embed(t.payload()));
        m.put("result", Json.embed(t.result()));
        m.put("progress", Json.embed(t.progress()));
        return m;
    }

    static Map<String, Object> eventJson(EventView e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", e.id());
        m.put("task_id", e.taskId());
        m.put("event", e.event());
        m.put("owner_id", e.owner());
        m.put("lease_token", e.leaseToken());
        m.put("at", Json.time(e.at()));
        m.put("detail", Json.embed(e.detail()));
        return m;
    }

    private static String shorten(String s, int max) {
        String one = s.replace('\n', ' ');
        return one.length() <= max ? one : one.substring(0, max - 1) + "…";
    }
}

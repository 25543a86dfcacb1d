package pgdispatch.ops;

import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStatus;
import pgdispatch.store.TaskStore;
import pgdispatch.store.UniqueKey;

/** {@code enqueue}: inserts one task and prints its id (the existing task's, when a key it holds refuses the insert). */
@Command(name = "enqueue", mixinStandardHelpOptions = true, description = "Enqueue a task; prints its id.")
final class EnqueueCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--kind", required = true, paramLabel = "K", description = "Task kind (a handler's kind)")
    String kind;

    @Option(names = "--payload", paramLabel = "JSON", defaultValue = "{}", description = "JSON object (default {})")
    String payload;

    @Option(names = "--queue", paramLabel = "Q", defaultValue = "default", description = "Queue (default: default)")
    String queue;

    @Option(names = "--priority", paramLabel = "P", defaultValue = "0", description = "-1000..1000, lower runs first")
    int priority;

    @Option(names = "--run-at", paramLabel = "ISO-8601", description = "When it is due, e.g. 2026-11-25T08:00:00Z (default now)")
    String runAt;

    @Option(names = "--max-attempts", paramLabel = "N", defaultValue = "5", description = "1..1000 (default 5)")
    int maxAttempts;

    @Option(names = "--idempotency-key", paramLabel = "KEY", description = "A second enqueue with this key returns the first task")
    String idempotencyKey;

    @Option(names = "--unique", description = "At most one such task waiting, pending or running at a time (by kind, and what --unique-by adds)")
    boolean unique;

    @Option(names = "--unique-by", paramLabel = "FIELDS", split = ",",
            description = "What else makes it unique: queue, payload (all of it), payload.NAME (a top-level field); implies --unique")
    List<String> uniqueBy;

    @Option(names = "--unique-period", paramLabel = "AGE", description = "The key holds one time bucket of this length (90s, 15m, 1h, 1d); implies --unique")
    String uniquePeriod;

    @Option(names = "--unique-also", paramLabel = "STATUSES", split = ",",
            description = "Finished statuses that keep holding the key (succeeded, failed, cancelled, quarantined); implies --unique")
    List<String> uniqueAlso;

    @Option(names = "--depends-on", paramLabel = "ID[,ID]", split = ",",
            description = "Run after these tasks (which must exist): waiting until all have succeeded; cancelled when one"
                    + " ends failed, cancelled, quarantined or compensated (unless --run-anyway)")
    List<String> dependsOn;

    @Option(names = "--run-anyway", description = "With --depends-on: run once every dependency has ended, however it ended")
    boolean runAnyway;

    @Option(names = "--json", description = "Print JSON: id, created, status, and the key the existing task holds")
    boolean json;

    /** The unique key the options describe, or null. */
    UniqueKey uniqueKey() {
        if (!unique && uniqueBy == null && uniquePeriod == null && uniqueAlso == null) return null;
        boolean byQueue = false;
        List<String> fields = new ArrayList<>();
        for (String b : uniqueBy == null ? List.<String>of() : uniqueBy) {
            if (b.equals("queue")) byQueue = true;
            else if (b.equals("payload")) fields.add("*");
            else if (b.startsWith("payload.") && b.length() > "payload.".length()) fields.add(b.substring("payload.".length()));
            else throw new IllegalArgumentException("--unique-by=" + b + " must be queue, payload or payload.NAME");
        }
        Set<TaskStatus> also = EnumSet.noneOf(TaskStatus.class);
        for (String a : uniqueAlso == null ? List.<String>of() : uniqueAlso) {
            also.add(Arrays.stream(TaskStatus.values()).filter(t -> t.sql().equals(a)).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("--unique-also=" + a + " must be succeeded, failed, cancelled or quarantined")));
        }
        return new UniqueKey(byQueue, fields, uniquePeriod == null ? null : Flags.duration("--unique-period", uniquePeriod), also);
    }

    /** A task enqueued without a unique key, with the status it has now (waiting or cancelled with dependencies). */
    private static TaskStore.Enqueued created(Database db, long id, TaskClient.Enqueue e) {
        TaskStatus status = e.dependencies() == null ? TaskStatus.PENDING
                : new pgdispatch.store.TaskQueries(db).task(id).map(t -> TaskStatus.of(t.status())).orElse(TaskStatus.PENDING);
        return new TaskStore.Enqueued(id, true, null, status);
    }

    @Override
    public Integer call() {
        OffsetDateTime at = null;
        if (runAt != null) {
            try {
                at = OffsetDateTime.parse(runAt);
            } catch (DateTimeParseException e) {
                throw new IllegalArgumentException("--run-at=" + runAt + " must be an ISO-8601 time with offset, e.g. 2026-11-25T08:00:00Z");
            }
        }
        DispatcherConfig cfg = Env.config();
        TaskClient.Enqueue e = new TaskClient.Enqueue(kind, payload, queue, priority, at, maxAttempts, idempotencyKey, uniqueKey());
        if (dependsOn != null) {
            e = e.dependsOn(dependsOn.stream().mapToLong(d -> Flags.parse("--depends-on", d, 1, Long.MAX_VALUE)).toArray());
        } else if (runAnyway) {
            throw new IllegalArgumentException("--run-anyway applies with --depends-on only");
        }
        if (runAnyway) e = e.runAnyway();
        TaskClient.validate(e, cfg.maxPayloadBytes()); // bad input fails before a connection is opened
        try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-enqueue")) {
            TaskClient client = new TaskClient(new TaskStore(db), cfg.maxPayloadBytes());
            db.requireCurrentSchema();
            // without a unique key the idempotency rule of pgdispatch_enqueue decides (same content: the
            // existing id; different content: refused)
            TaskStore.Enqueued r = e.unique() != null ? client.submit(e) : created(db, client.enqueue(e), e);
            if (json) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("id", r.id());
                m.put("created", r.created());
                m.put("conflict", r.conflict());
                m.put("status", r.existingStatus().sql());
                spec.commandLine().getOut().println(Json.write(m));
                return Main.OK;
            }
            spec.commandLine().getOut().println(r.id());
            if (r.created() && r.existingStatus() != TaskStatus.PENDING) {
                // a task with dependencies: waiting for them, or cancelled at once (one had ended otherwise)
                spec.commandLine().getErr().printf("pgdispatch: task %d is %s%s%n", r.id(), r.existingStatus().sql(),
                        r.existingStatus() == TaskStatus.WAITING ? " (see: pgdispatch tasks show " + r.id() + ")" : "");
            }
            if (!r.created()) {
                // stdout stays the id alone (scripts read it); the notice goes beside the log lines
                spec.commandLine().getErr().printf("pgdispatch: not enqueued again: task %d holds this %s (status %s)%n",
                        r.id(), r.conflict().replace('_', ' '), r.existingStatus().sql());
            }
            return Main.OK;
        }
    }
}

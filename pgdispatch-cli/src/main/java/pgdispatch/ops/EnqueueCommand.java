package pgdispatch.ops;

import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;

/** {@code enqueue}: inserts one task and prints its id. */
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
        TaskClient.Enqueue e = new TaskClient.Enqueue(kind, payload, queue, priority, at, maxAttempts, idempotencyKey);
        TaskClient.validate(e, cfg.maxPayloadBytes()); // bad input fails before a connection is opened
        try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-enqueue")) {
            TaskClient client = new TaskClient(new TaskStore(db), cfg.maxPayloadBytes());
            db.requireCurrentSchema();
            long id = client.enqueue(e);
            spec.commandLine().getOut().println(id);
            return Main.OK;
        }
    }
}

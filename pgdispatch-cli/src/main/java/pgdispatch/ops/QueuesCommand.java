package pgdispatch.ops;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.QueueStore;
import pgdispatch.store.QueueStore.QueueOverview;
import pgdispatch.store.QueueStore.QueueState;

/** {@code queues list|pause|resume}: which queues exist, and stopping or restarting the claims from one. */
@Command(name = "queues", mixinStandardHelpOptions = true, description = "List queues, pause or resume one.",
        subcommands = {QueuesCommand.ListQueues.class, QueuesCommand.Pause.class, QueuesCommand.Resume.class})
final class QueuesCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required: list, pause or resume");
    }

    /** Who an operator action is recorded as, unless {@code --by} says otherwise. */
    static String defaultActor() {
        return "cli:" + System.getProperty("user.name", "unknown");
    }

    /** {@code queues list}. */
    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "Queues with tasks, a pause state or a live node: paused or active, pending, running, nodes.")
    static final class ListQueues implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            DispatcherConfig cfg = Env.config();
            try (Database db = TasksCommand.open("queues")) {
                List<QueueOverview> queues = new QueueStore(db.dataSource()).overview(cfg.nodeTimeout());
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    out.println(Json.write(queues.stream().map(q -> {
                        Map<String, Object> m = stateJson(q.state());
                        m.put("pending", q.pending());
                        m.put("running", q.running());
                        m.put("live_nodes", q.liveNodes());
                        return m;
                    }).toList()));
                    return Main.OK;
                }
                if (queues.isEmpty()) {
                    out.println("(no queues)");
                    return Main.OK;
                }
                out.printf("%-20s %-7s %9s %9s %-24s %-26s %-16s %s%n", "QUEUE", "STATE", "PENDING", "RUNNING",
                        "LIVE_NODES", "CHANGED_AT", "CHANGED_BY", "REASON");
                for (QueueOverview q : queues) {
                    QueueState s = q.state();
                    out.printf("%-20s %-7s %9d %9d %-24s %-26s %-16s %s%n", s.queue(), s.paused() ? "paused" : "active",
                            q.pending(), q.running(), q.liveNodes().isEmpty() ? "-" : String.join(",", q.liveNodes()),
                            s.changedAt() == null ? "-" : Json.time(s.changedAt()), dash(s.changedBy()),
                            s.reason() == null ? "" : s.reason());
                }
                return Main.OK;
            }
        }
    }

    /** {@code queues pause NAME}. */
    @Command(name = "pause", mixinStandardHelpOptions = true,
            description = "Stop every node claiming from a queue (from its next claim on); running tasks finish normally.")
    static final class Pause extends Change {
        @Override
        QueueStore.Change apply(QueueStore store, String who) {
            return store.pause(queue, who, reason);
        }

        @Override
        String done() {
            return "paused";
        }

        @Override
        String already() {
            return "was already paused";
        }
    }

    /** {@code queues resume NAME}. */
    @Command(name = "resume", mixinStandardHelpOptions = true,
            description = "Let nodes claim from a paused queue again (nodes serving it are woken at once).")
    static final class Resume extends Change {
        @Override
        QueueStore.Change apply(QueueStore store, String who) {
            return store.resume(queue, who, reason);
        }

        @Override
        String done() {
            return "resumed";
        }

        @Override
        String already() {
            return "was not paused";
        }
    }

    /** A pause or resume; doing what is already so is not an error (exit 0), and says so. */
    abstract static class Change implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "NAME", description = "Queue name")
        String queue;

        @Option(names = "--reason", paramLabel = "R", description = "Why; shown by queues list")
        String reason;

        @Option(names = "--by", paramLabel = "WHO", description = "Recorded as who changed it (default cli:<user>)")
        String by;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        abstract QueueStore.Change apply(QueueStore store, String who);

        abstract String done();

        abstract String already();

        @Override
        public Integer call() {
            QueueStore.requireName(queue);
            QueueStore.Change c;
            try (Database db = TasksCommand.open("queues")) {
                c = apply(new QueueStore(db.dataSource()), by == null ? defaultActor() : by);
            }
            PrintWriter out = spec.commandLine().getOut();
            QueueState s = c.state();
            if (json) {
                Map<String, Object> m = stateJson(s);
                m.put("changed", c.changed());
                out.println(Json.write(m));
            } else if (c.changed()) {
                out.printf("queue %s %s%s%n", s.queue(), done(), s.reason() == null ? "" : " (" + s.reason() + ")");
            } else {
                out.printf("queue %s %s%s; nothing changed%n", s.queue(), already(),
                        s.changedAt() == null ? "" : " (since " + Json.time(s.changedAt()) + " by " + dash(s.changedBy()) + ")");
            }
            return Main.OK;
        }
    }

    static Map<String, Object> stateJson(QueueState s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("queue", s.queue());
        m.put("paused", s.paused());
        m.put("changed_at", Json.time(s.changedAt()));
        m.put("changed_by", s.changedBy());
        m.put("reason", s.reason());
        return m;
    }

    private static String dash(String s) {
        return s == null ? "-" : s;
    }
}

package pgdispatch.ops;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import pgdispatch.store.Database;
import pgdispatch.store.LimitStore;
import pgdispatch.store.LimitStore.Limit;
import pgdispatch.store.LimitStore.Scope;

/** {@code limits list|set|clear}: cluster-wide limits on how many tasks of a kind or queue run at once. */
@Command(name = "limits", mixinStandardHelpOptions = true,
        description = "List, set or clear cluster-wide concurrency limits (per kind or per queue).",
        subcommands = {LimitsCommand.ListLimits.class, LimitsCommand.Set.class, LimitsCommand.Clear.class})
final class LimitsCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required: list, set or clear");
    }

    /** {@code --kind K} or {@code --queue Q}, exactly one. */
    static final class Target {
        @Option(names = "--kind", paramLabel = "K", required = true, description = "Limit the tasks of this kind")
        String kind;

        @Option(names = "--queue", paramLabel = "Q", required = true, description = "Limit the tasks of this queue")
        String queue;

        Scope scope() {
            return kind != null ? Scope.KIND : Scope.QUEUE;
        }

        String name() {
            return kind != null ? kind : queue;
        }
    }

    /** {@code limits list}. */
    @Command(name = "list", mixinStandardHelpOptions = true, description = "Every limit with the tasks it covers running now.")
    static final class ListLimits implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            try (Database db = TasksCommand.open("limits")) {
                List<Limit> limits = new LimitStore(db.dataSource()).list();
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    out.println(Json.write(limits.stream().map(LimitsCommand::json).toList()));
                    return Main.OK;
                }
                if (limits.isEmpty()) {
                    out.println("(no limits)");
                    return Main.OK;
                }
                out.printf("%-6s %-24s %12s %8s %-28s %s%n", "SCOPE", "NAME", "MAX_RUNNING", "RUNNING", "CHANGED_AT", "CHANGED_BY");
                for (Limit l : limits) {
                    out.printf("%-6s %-24s %12d %8d %-28s %s%n", l.scope().sql(), l.name(), l.maxRunning(), l.running(),
                            Json.time(l.changedAt()), l.changedBy() == null ? "-" : l.changedBy());
                }
                return Main.OK;
            }
        }
    }

    /** {@code limits set --kind K MAX}. */
    @Command(name = "set", mixinStandardHelpOptions = true,
            description = "Set (or change) a limit: from every node's next claim on, at most MAX of these tasks run at once"
                    + " across the cluster; tasks running above a lowered limit finish.")
    static final class Set implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Target target;

        @Parameters(paramLabel = "MAX", description = "0-100000 (0: none starts)")
        String max;

        @Option(names = "--by", paramLabel = "WHO", description = "Recorded as who set it (default cli:<user>)")
        String by;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            int n = Flags.intIn("MAX", max, 0, LimitStore.MAX);
            LimitStore.check(target.scope(), target.name(), n);
            try (Database db = TasksCommand.open("limits")) {
                Limit l = new LimitStore(db.dataSource()).set(target.scope(), target.name(), n,
                        by == null ? QueuesCommand.defaultActor() : by);
                PrintWriter out = spec.commandLine().getOut();
                if (json) out.println(Json.write(json(l)));
                else out.printf("limit %s %s: at most %d running (%d running now)%n", l.scope().sql(), l.name(), l.maxRunning(), l.running());
                return Main.OK;
            }
        }
    }

    /** {@code limits clear --kind K}. */
    @Command(name = "clear", mixinStandardHelpOptions = true, description = "Remove a limit.")
    static final class Clear implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Target target;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            try (Database db = TasksCommand.open("limits")) {
                boolean cleared = new LimitStore(db.dataSource()).clear(target.scope(), target.name());
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("scope", target.scope().sql());
                    m.put("name", target.name());
                    m.put("cleared", cleared);
                    out.println(Json.write(m));
                } else {
                    out.printf("limit %s %s: %s%n", target.scope().sql(), target.name(), cleared ? "cleared" : "there was none; nothing changed");
                }
                return Main.OK;
            }
        }
    }

    static Map<String, Object> json(Limit l) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("scope", l.scope().sql());
        m.put("name", l.name());
        m.put("max_running", l.maxRunning());
        m.put("running", l.running());
        m.put("changed_at", Json.time(l.changedAt()));
        m.put("changed_by", l.changedBy());
        return m;
    }
}

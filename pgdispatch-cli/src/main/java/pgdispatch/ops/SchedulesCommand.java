package pgdispatch.ops;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import pgdispatch.store.Database;
import pgdispatch.store.Schedule;
import pgdispatch.store.ScheduleStore;
import pgdispatch.store.ScheduleStore.Stored;

/** {@code schedules list|add|enable|disable|remove|run-now}: recurring tasks (docs/FEATURES.md#recurring-tasks). */
@Command(name = "schedules", mixinStandardHelpOptions = true,
        description = "List, add, enable, disable, remove or run recurring tasks (cron or fixed interval).",
        subcommands = {SchedulesCommand.ListSchedules.class, SchedulesCommand.Add.class, SchedulesCommand.Enable.class,
                SchedulesCommand.Disable.class, SchedulesCommand.Remove.class, SchedulesCommand.RunNow.class})
final class SchedulesCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(),
                "a subcommand is required: list, add, enable, disable, remove or run-now");
    }

    /** {@code schedules list}. */
    @Command(name = "list", mixinStandardHelpOptions = true, description = "Every schedule: timing, task, policy, next and last fire.")
    static final class ListSchedules implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            try (Database db = TasksCommand.open("schedules")) {
                List<Stored> all = new ScheduleStore(db.dataSource()).list();
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    out.println(Json.write(all.stream().map(SchedulesCommand::json).toList()));
                    return Main.OK;
                }
                if (all.isEmpty()) {
                    out.println("(no schedules)");
                    return Main.OK;
                }
                out.printf("%-20s %-8s %-36s %-24s %-12s %-26s %-26s %s%n", "NAME", "STATE", "TIMING", "TASK", "MISSED",
                        "NEXT_FIRE_AT", "LAST_FIRED_AT", "CHANGED_BY");
                for (Stored s : all) {
                    out.printf("%-20s %-8s %-36s %-24s %-12s %-26s %-26s %s%n", s.name(), s.enabled() ? "enabled" : "disabled",
                            s.timing(), s.kind() + "@" + s.queue(), s.missedPolicy(), next(s), dash(Json.time(s.lastFiredAt())),
                            dash(s.changedBy()));
                }
                return Main.OK;
            }
        }
    }

    /** {@code --cron EXPR} or {@code --every DURATION}, exactly one. */
    static final class Timing {
        @Option(names = "--cron", paramLabel = "EXPR", required = true,
                description = "5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; quote it")
        String cron;

        @Option(names = "--every", paramLabel = "DURATION", required = true,
                description = "A fixed interval: 90s, 15m, 2h, 1d or PT15M (whole seconds, 1s to 366d)")
        String every;
    }

    /** {@code schedules add NAME --cron EXPR --kind K}. */
    @Command(name = "add", mixinStandardHelpOptions = true,
            description = "Add a schedule (enabled unless --disabled); its first fire time is the first after now.")
    static final class Add implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "NAME", description = "1-200 of letters, digits, _ . : -")
        String name;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Timing timing;

        @Option(names = "--zone", paramLabel = "ZONE", defaultValue = "UTC", description = "Time zone of a cron (default UTC)")
        String zone;

        @Option(names = "--kind", paramLabel = "K", required = true, description = "The kind of the task each fire enqueues")
        String kind;

        @Option(names = "--payload", paramLabel = "JSON", defaultValue = "{}", description = "The task's payload, a JSON object")
        String payload;

        @Option(names = "--queue", paramLabel = "Q", defaultValue = "default")
        String queue;

        @Option(names = "--priority", paramLabel = "P", defaultValue = "0", description = "-1000 to 1000, lower first")
        String priority;

        @Option(names = "--max-attempts", paramLabel = "N", defaultValue = "5")
        String maxAttempts;

        @Option(names = "--backfill", paramLabel = "N",
                description = "After an outage enqueue the latest N missed fire times (1-1000); default: skip them all")
        String backfill;

        @Option(names = "--disabled", description = "Store it disabled")
        boolean disabled;

        @Option(names = "--replace", description = "Replace a schedule of this name (its enabled state is kept)")
        boolean replace;

        @Option(names = "--by", paramLabel = "WHO", description = "Recorded as who changed it (default cli:<user>)")
        String by;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            Schedule s = timing.cron != null ? Schedule.cron(name, timing.cron, kind)
                    : Schedule.every(name, timing.every, kind);
            s = s.zone(zone).payload(payload).queue(queue).priority(Flags.intIn("--priority", priority, -1000, 1000))
                    .maxAttempts(Flags.intIn("--max-attempts", maxAttempts, 1, 1000));
            if (backfill != null) s = s.backfill(Flags.intIn("--backfill", backfill, 1, Schedule.MAX_BACKFILL));
            String who = by == null ? QueuesCommand.defaultActor() : by;
            try (Database db = TasksCommand.open("schedules")) {
                ScheduleStore store = new ScheduleStore(db.dataSource());
                String outcome;
                if (replace) {
                    outcome = store.upsert(s, who).name().toLowerCase(java.util.Locale.ROOT);
                } else if (store.add(s, !disabled, who)) {
                    outcome = "created";
                } else {
                    spec.commandLine().getErr().printf("pgdispatch: schedule %s exists; add --replace to change it,"
                            + " or `schedules remove %s` first%n", name, name);
                    return Main.FAILURE;
                }
                store.placeAfterNow(name, s.recurrence());
                Stored stored = store.find(name).orElseThrow();
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    Map<String, Object> m = json(stored);
                    m.put("outcome", outcome);
                    out.println(Json.write(m));
                } else {
                    out.printf("schedule %s %s: %s, task %s@%s, missed fire times: %s%s%n", name, outcome, stored.timing(),
                            stored.kind(), stored.queue(), stored.missedPolicy(), stored.enabled() ? "" : " (disabled)");
                }
                return Main.OK;
            }
        }
    }

    /** The shared part of enable and disable. */
    abstract static class Toggle implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--by", paramLabel = "WHO", description = "Recorded as who changed it (default cli:<user>)")
        String by;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        abstract boolean enable();

        @Override
        public Integer call() {
            try (Database db = TasksCommand.open("schedules")) {
                ScheduleStore store = new ScheduleStore(db.dataSource());
                Optional<Boolean> changed = store.setEnabled(name, enable(), by == null ? QueuesCommand.defaultActor() : by);
                if (changed.isEmpty()) return notFound(spec, name);
                PrintWriter out = spec.commandLine().getOut();
                String state = enable() ? "enabled" : "disabled";
                if (json) {
                    Map<String, Object> m = json(store.find(name).orElseThrow());
                    m.put("changed", changed.get());
                    out.println(Json.write(m));
                } else if (changed.get()) {
                    Stored now = store.find(name).orElseThrow();
                    out.printf("schedule %s: %s%s%n", name, state, enable() ? ", next fire at " + next(now)
                            + " (the fire times while it was disabled are not enqueued)" : "");
                } else {
                    out.printf("schedule %s: already %s; nothing changed%n", name, state);
                }
                return Main.OK;
            }
        }
    }

    /** {@code schedules enable NAME}. */
    @Command(name = "enable", mixinStandardHelpOptions = true, description = "Enable a schedule: it fires from its next fire time after now.")
    static final class Enable extends Toggle {
        @Override
        boolean enable() {
            return true;
        }
    }

    /** {@code schedules disable NAME}. */
    @Command(name = "disable", mixinStandardHelpOptions = true,
            description = "Disable a schedule: no node enqueues its tasks until it is enabled (a code declaration does not re-enable it).")
    static final class Disable extends Toggle {
        @Override
        boolean enable() {
            return false;
        }
    }

    /** {@code schedules remove NAME}. */
    @Command(name = "remove", mixinStandardHelpOptions = true,
            description = "Delete a schedule and its history (the tasks it enqueued stay). A node declaring it in code adds it again at its start.")
    static final class Remove implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            try (Database db = TasksCommand.open("schedules")) {
                boolean removed = new ScheduleStore(db.dataSource()).remove(name);
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("name", name);
                    m.put("removed", removed);
                    out.println(Json.write(m));
                } else {
                    out.printf("schedule %s: %s%n", name, removed ? "removed" : "there was none; nothing changed");
                }
                return Main.OK;
            }
        }
    }

    /** {@code schedules run-now NAME}. */
    @Command(name = "run-now", mixinStandardHelpOptions = true,
            description = "Enqueue one task of the schedule now (also when disabled); its timing is not changed.")
    static final class RunNow implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--by", paramLabel = "WHO", description = "Recorded in the schedule's history (default cli:<user>)")
        String by;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            try (Database db = TasksCommand.open("schedules")) {
                Optional<Long> id = new ScheduleStore(db.dataSource()).runNow(name, by == null ? QueuesCommand.defaultActor() : by);
                if (id.isEmpty()) return notFound(spec, name);
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("name", name);
                    m.put("task_id", id.get());
                    out.println(Json.write(m));
                } else {
                    out.printf("schedule %s: enqueued task %d%n", name, id.get());
                }
                return Main.OK;
            }
        }
    }

    private static int notFound(CommandSpec spec, String name) {
        spec.commandLine().getErr().printf("pgdispatch: schedule %s not found%n", name);
        return Main.FAILURE;
    }

    private static String next(Stored s) {
        if (!s.enabled()) return "-";
        return s.nextFireAt() == null ? "(next scheduler run)" : Json.time(s.nextFireAt());
    }

    private static String dash(String s) {
        return s == null ? "-" : s;
    }

    static Map<String, Object> json(Stored s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", s.name());
        m.put("enabled", s.enabled());
        m.put("cron", s.cron());
        m.put("every_s", s.everySeconds());
        m.put("time_zone", s.timeZone());
        m.put("kind", s.kind());
        m.put("payload", Json.embed(s.payloadJson()));
        m.put("queue", s.queue());
        m.put("priority", s.priority());
        m.put("max_attempts", s.maxAttempts());
        m.put("missed", s.missed());
        m.put("backfill_max", s.backfillMax());
        m.put("next_fire_at", Json.time(s.nextFireAt()));
        m.put("last_fired_at", Json.time(s.lastFiredAt()));
        m.put("created_at", Json.time(s.createdAt()));
        m.put("updated_at", Json.time(s.updatedAt()));
        m.put("changed_by", s.changedBy());
        return m;
    }
}

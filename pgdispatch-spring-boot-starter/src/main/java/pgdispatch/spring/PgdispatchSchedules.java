package pgdispatch.spring;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.config.ConfigException;
import pgdispatch.spring.PgdispatchProperties.ScheduleProperties;
import pgdispatch.store.Schedule;

/**
 * The schedules of a Spring application: {@code pgdispatch.schedules.<name>.*} and the {@link Schedule}
 * beans, checked before the node is built. Every problem is reported at once, each naming the property
 * (or the bean), the value and the rule: {@code pgdispatch.schedules.nightly.cron='0 25 * * *' is not a
 * valid 5-field cron expression: Value 25 not in range [0, 23]}.
 */
final class PgdispatchSchedules {
    /** Schedule's field words in its messages, by the property that sets them. */
    private static final Map<String, String> FIELDS = Map.of("max_attempts", "max-attempts", "cron", "cron", "every", "every",
            "zone", "zone", "kind", "kind", "payload", "payload", "queue", "queue", "priority", "priority", "backfill", "backfill",
            "name", "name");

    private PgdispatchSchedules() {}

    static List<Schedule> of(Map<String, ScheduleProperties> properties, List<Schedule> beans) {
        List<String> problems = new ArrayList<>();
        Map<String, Schedule> all = new LinkedHashMap<>();
        properties.forEach((name, p) -> {
            String prefix = "pgdispatch.schedules." + name;
            try {
                Schedule s = build(name, p, prefix);
                all.put(name, s);
            } catch (IllegalArgumentException e) {
                problems.add(asProperty(prefix, name, e.getMessage()));
            }
        });
        for (Schedule s : beans) {
            if (all.putIfAbsent(s.name(), s) != null) {
                problems.add("schedule " + s.name() + " is declared twice (pgdispatch.schedules." + s.name()
                        + ".* and Schedule beans share one name space); keep one");
            }
        }
        if (!problems.isEmpty()) throw new ConfigException(problems);
        return List.copyOf(all.values());
    }

    private static Schedule build(String name, ScheduleProperties p, String prefix) {
        if ((p.getCron() == null) == (p.getEvery() == null)) {
            throw new IllegalArgumentException(prefix + " needs exactly one of " + prefix + ".cron and " + prefix + ".every, got "
                    + (p.getCron() == null ? "neither" : "both"));
        }
        Schedule s = p.getCron() != null ? Schedule.cron(name, p.getCron(), p.getKind())
                : Schedule.every(name, p.getEvery(), p.getKind());
        s = s.zone(p.getZone()).payload(p.getPayload()).queue(p.getQueue()).priority(p.getPriority()).maxAttempts(p.getMaxAttempts());
        return p.getBackfill() == null ? s : s.backfill(p.getBackfill());
    }

    /** "schedule n: cron='x' is ..." as "pgdispatch.schedules.n.cron='x' is ...". */
    static String asProperty(String prefix, String name, String message) {
        String rest = message.startsWith("schedule " + name + ": ") ? message.substring(("schedule " + name + ": ").length()) : message;
        if (rest.startsWith(prefix)) return rest;
        for (var f : FIELDS.entrySet()) {
            if (rest.startsWith(f.getKey() + "=") || rest.startsWith(f.getKey() + " ")) {
                return prefix + "." + f.getValue() + rest.substring(f.getKey().length());
            }
        }
        return prefix + ": " + rest;
    }
}

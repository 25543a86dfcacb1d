package pgdispatch.store;

import com.cronutils.model.CronType;
import com.cronutils.model.definition.CronDefinitionBuilder;
import com.cronutils.model.time.ExecutionTime;
import com.cronutils.parser.CronParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A recurring task: when (a cron expression or a fixed interval, in a time zone), what to enqueue
 * (kind, payload, queue, priority, max attempts) and what to do with fire times missed during an outage.
 * The compact constructor checks every field; a message names the schedule, the field, the value and
 * the rule. {@code Schedule.cron("nightly", "0 30 2 * * ?", "report.build").zone("Europe/Berlin")}.
 *
 * <p>Cron: 5 fields are cron-utils' {@code UNIX} definition (minute hour day-of-month month
 * day-of-week), also written as one of {@link #NICKNAMES} ({@code @daily}, stored as {@code 0 0 * * *}); 6 fields its {@code SPRING53} definition (seconds first, then the same five; {@code ?},
 * {@code L}, {@code W}, {@code #} as in Quartz, day-of-week 0-7 or MON-SUN with Sunday 0 or 7 as in Unix,
 * not Quartz's 1 = Sunday). Nicknames ({@code @daily}) and a year field are refused.
 */
public record Schedule(String name, String cron, Duration every, ZoneId zone, String kind, String payloadJson,
                       String queue, int priority, int maxAttempts, Missed missed, int backfillMax) {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}");
    private static final Pattern QUEUE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}");
    /** The zone names the schema accepts (V12_1): IANA region names, no offsets such as {@code UTC+5}. */
    private static final Pattern ZONE = Pattern.compile("[A-Za-z][A-Za-z0-9_]*(/[A-Za-z0-9_+-]+)*");
    private static final Pattern SHORT_DURATION = Pattern.compile("([0-9]{1,9})([smhd])");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final CronParser UNIX = new CronParser(CronDefinitionBuilder.instanceDefinitionFor(CronType.UNIX));
    private static final CronParser SECONDS = new CronParser(CronDefinitionBuilder.instanceDefinitionFor(CronType.SPRING53));
    public static final Duration MAX_EVERY = Duration.ofDays(366);
    public static final int MAX_BACKFILL = 1000;
    /** The nicknames of Vixie cron (and of River's and Oban's cron), each stored as the expression it stands for. */
    public static final Map<String, String> NICKNAMES = nicknames();

    private static Map<String, String> nicknames() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("@yearly", "0 0 1 1 *");
        m.put("@annually", "0 0 1 1 *");
        m.put("@monthly", "0 0 1 * *");
        m.put("@weekly", "0 0 * * 0");
        m.put("@daily", "0 0 * * *");
        m.put("@midnight", "0 0 * * *");
        m.put("@hourly", "0 * * * *");
        return java.util.Collections.unmodifiableMap(m);
    }

    /** What a cron message says the accepted forms are. */
    public static final String CRON_RULE = "5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first";

    /** What happens to fire times found long past (an outage): see {@code Scheduler}. */
    public enum Missed {
        /** None of them is enqueued; the decision is recorded with how many were skipped. */
        SKIP,
        /** The latest {@code backfillMax} of them are enqueued (oldest first); the others are skipped. */
        BACKFILL;

        public String sql() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Missed of(String s) {
            return valueOf(s.toUpperCase(Locale.ROOT));
        }
    }

    public Schedule {
        String who = "schedule " + (name == null ? "(unnamed)" : name) + ": ";
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException(who + "name=" + quote(name)
                    + " must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        }
        if ((cron == null) == (every == null)) {
            throw new IllegalArgumentException(who + "needs exactly one of cron and every, got "
                    + (cron == null ? "neither" : "both (cron=" + quote(cron) + ", every=" + every + ")"));
        }
        if (zone == null) throw new IllegalArgumentException(who + "zone must be given (UTC, Europe/Berlin, ...)");
        if (zone.equals(ZoneOffset.UTC)) zone = ZoneId.of("UTC");
        if (!ZONE.matcher(zone.getId()).matches()) {
            throw new IllegalArgumentException(who + "zone=" + quote(zone.getId()) + " must be a region name such as"
                    + " Europe/Berlin or UTC (an offset such as UTC+5 means opposite things to Java and PostgreSQL)");
        }
        if (cron != null) {
            cron = cron.strip();
            if (cron.startsWith("@")) {
                String expanded = NICKNAMES.get(cron.toLowerCase(Locale.ROOT));
                if (expanded == null) {
                    throw new IllegalArgumentException(who + "cron=" + quote(cron) + " is not a nickname pgdispatch knows: "
                            + String.join(", ", NICKNAMES.keySet()) + " (or " + CRON_RULE + ")");
                }
                cron = expanded; // stored and listed as its expression
            }
            ExecutionTime parsed = parse(who, cron);
            if (parsed.nextExecution(ZonedDateTime.now(zone)).isEmpty()) {
                throw new IllegalArgumentException(who + "cron=" + quote(cron) + " never fires (no date matches it)");
            }
        }
        if (every != null && (every.compareTo(Duration.ofSeconds(1)) < 0 || every.compareTo(MAX_EVERY) > 0
                || every.getNano() != 0)) {
            throw new IllegalArgumentException(who + "every=" + every
                    + " must be a whole number of seconds from 1 s to 366 days");
        }
        if (kind == null || !NAME.matcher(kind).matches()) {
            throw new IllegalArgumentException(who + "kind=" + quote(kind)
                    + " must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        }
        if (payloadJson == null) payloadJson = "{}";
        JsonNode node;
        try {
            node = JSON.readTree(payloadJson);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(who + "payload is not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(who + "payload must be a JSON object ({...}), got "
                    + (node == null ? "nothing" : node.getNodeType().name().toLowerCase(Locale.ROOT)));
        }
        if (queue == null || !QUEUE.matcher(queue).matches()) {
            throw new IllegalArgumentException(who + "queue=" + quote(queue)
                    + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        }
        if (priority < -1000 || priority > 1000) {
            throw new IllegalArgumentException(who + "priority=" + priority + " must be from -1000 to 1000 (lower runs first)");
        }
        if (maxAttempts < 1 || maxAttempts > 1000) {
            throw new IllegalArgumentException(who + "max_attempts=" + maxAttempts + " must be from 1 to 1000");
        }
        if (missed == null) missed = Missed.SKIP;
        if (missed == Missed.SKIP && backfillMax != 0) {
            throw new IllegalArgumentException(who + "backfill=" + backfillMax + " needs the missed policy backfill (skip enqueues none)");
        }
        if (missed == Missed.BACKFILL && (backfillMax < 1 || backfillMax > MAX_BACKFILL)) {
            throw new IllegalArgumentException(who + "backfill=" + backfillMax + " must be from 1 to " + MAX_BACKFILL);
        }
    }

    /** Fires on {@code expression} (5 or 6 fields, see the class comment) in UTC; the task has {@code kind}, payload {}. */
    public static Schedule cron(String name, String expression, String kind) {
        return new Schedule(name, expression, null, ZoneId.of("UTC"), kind, "{}", "default", 0, 5, Missed.SKIP, 0);
    }

    /** Fires every {@code interval} (elapsed time: no time zone applies), the first time one interval after it is stored. */
    public static Schedule every(String name, Duration interval, String kind) {
        return new Schedule(name, null, interval, ZoneId.of("UTC"), kind, "{}", "default", 0, 5, Missed.SKIP, 0);
    }

    /**
     * Fires every {@code interval} written as text: {@code 90s}, {@code 15m}, {@code 2h}, {@code 1d} or
     * ISO-8601 ({@code PT15M}): the form of the CLI's {@code --every} and the starter's property.
     */
    public static Schedule every(String name, String interval, String kind) {
        String v = interval == null ? "" : interval.strip();
        Matcher m = SHORT_DURATION.matcher(v);
        Duration d = null;
        if (m.matches()) {
            long n = Long.parseLong(m.group(1));
            d = switch (m.group(2)) {
                case "s" -> Duration.ofSeconds(n);
                case "m" -> Duration.ofMinutes(n);
                case "h" -> Duration.ofHours(n);
                default -> Duration.ofDays(n);
            };
        } else {
            try {
                d = Duration.parse(v);
            } catch (java.time.format.DateTimeParseException e) {
                throw new IllegalArgumentException("schedule " + name + ": every=" + quote(interval)
                        + " must be a duration such as 90s, 15m, 2h, 1d or PT15M");
            }
        }
        return every(name, d, kind);
    }

    public Schedule zone(String zoneId) {
        ZoneId z;
        try {
            z = ZoneId.of(zoneId);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("schedule " + name + ": zone=" + quote(zoneId)
                    + " is not a known time zone (a region name such as Europe/Berlin, or UTC)");
        }
        return new Schedule(name, cron, every, z, kind, payloadJson, queue, priority, maxAttempts, missed, backfillMax);
    }

    public Schedule payload(String json) {
        return new Schedule(name, cron, every, zone, kind, json, queue, priority, maxAttempts, missed, backfillMax);
    }

    public Schedule queue(String q) {
        return new Schedule(name, cron, every, zone, kind, payloadJson, q, priority, maxAttempts, missed, backfillMax);
    }

    public Schedule priority(int p) {
        return new Schedule(name, cron, every, zone, kind, payloadJson, queue, p, maxAttempts, missed, backfillMax);
    }

    public Schedule maxAttempts(int n) {
        return new Schedule(name, cron, every, zone, kind, payloadJson, queue, priority, n, missed, backfillMax);
    }

    /** Missed fire times are skipped (the default). */
    public Schedule skipMissed() {
        return new Schedule(name, cron, every, zone, kind, payloadJson, queue, priority, maxAttempts, Missed.SKIP, 0);
    }

    /** The latest {@code n} missed fire times are enqueued, the older ones skipped. */
    public Schedule backfill(int n) {
        return new Schedule(name, cron, every, zone, kind, payloadJson, queue, priority, maxAttempts, Missed.BACKFILL, n);
    }

    /** The interval in whole seconds (the schema's {@code every_s}), or null for a cron schedule. */
    public Integer everySeconds() {
        return every == null ? null : (int) every.toSeconds();
    }

    /** "cron 0 30 2 * * ? Europe/Berlin" or "every PT10M": what listings show. */
    public String timing() {
        return cron != null ? "cron " + cron + " " + zone.getId() : "every " + every;
    }

    /** The fire times of this schedule, parsed once. */
    public Recurrence recurrence() {
        return new Recurrence(cron == null ? null : parse("schedule " + name + ": ", cron), every, zone);
    }

    private static ExecutionTime parse(String who, String cron) {
        int fields = cron.isEmpty() ? 0 : cron.split("\\s+").length;
        if (fields != 5 && fields != 6) {
            throw new IllegalArgumentException(who + "cron=" + quote(cron) + " has " + fields + (fields == 1 ? " field" : " fields") + "; it must have " + CRON_RULE);
        }
        try {
            return ExecutionTime.forCron((fields == 5 ? UNIX : SECONDS).parse(cron));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(who + "cron=" + quote(cron) + " is not a valid " + fields + "-field cron expression: "
                    + e.getMessage().replace("Failed to parse cron expression. ", ""));
        }
    }

    private static String quote(String s) {
        return s == null ? "(missing)" : "'" + s + "'";
    }

    /**
     * The fire times of a schedule. Cron times are local wall-clock times in the zone, with the two
     * daylight-saving rules of Vixie cron: a time that does not exist (spring forward: 02:30 on the
     * night clocks jump from 02:00 to 03:00) fires once, moved forward by the gap (03:30); a time that
     * occurs twice (fall back) fires once when the expression names its hour (a daily 02:30), at every
     * occurrence when the hour is a wildcard or a step (an hourly {@code 30 * * * *} fires at both 02:30s,
     * as elapsed hours). An interval is elapsed time: DST does not apply.
     */
    public static final class Recurrence {
        private final ExecutionTime cron;
        private final Duration every;
        private final ZoneId zone;

        private Recurrence(ExecutionTime cron, Duration every, ZoneId zone) {
            this.cron = cron;
            this.every = every;
            this.zone = zone;
        }

        /** The first fire time strictly after {@code after}; null when there is none (a cron naming a past date only). */
        public Instant next(Instant after) {
            if (every != null) return after.truncatedTo(ChronoUnit.SECONDS).plus(every);
            ZonedDateTime at = after.atZone(zone);
            Instant regular = cron.nextExecution(at).map(ZonedDateTime::toInstant).orElse(null);
            // cron-utils skips a wall time that falls into a spring-forward gap; the same pattern over
            // local date-times (in UTC, which has no transitions) finds it, and the zone moves it forward
            LocalDateTime wall = cron.nextExecution(at.toLocalDateTime().atZone(ZoneOffset.UTC))
                    .map(ZonedDateTime::toLocalDateTime).orElse(null);
            if (wall != null && zone.getRules().getValidOffsets(wall).isEmpty()) {
                Instant shifted = ZonedDateTime.of(wall, zone).toInstant();
                if (shifted.isAfter(after) && (regular == null || shifted.isBefore(regular))) return shifted;
            }
            return regular;
        }
    }
}

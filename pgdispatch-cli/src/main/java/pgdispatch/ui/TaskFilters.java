package pgdispatch.ui;

import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import pgdispatch.store.TaskQueries.TaskFilter;
import pgdispatch.store.TaskStatus;

/**
 * The task listing's query parameters turned into a {@link TaskFilter} (whose values the store binds as
 * parameters), with one message per bad value naming the parameter, the value and the rule.
 */
final class TaskFilters {
    static final int MAX_TEXT = 200;
    static final int PAGE = 50;
    static final List<String> STATUSES = Arrays.stream(TaskStatus.values()).map(TaskStatus::sql).toList();

    /** The parsed filter (null when {@code errors} is not empty), the cursor, and the problems found. */
    record Parsed(TaskFilter filter, Long before, List<String> errors) {}

    private TaskFilters() {}

    static Parsed parse(Function<String, String> param) {
        List<String> errors = new ArrayList<>();
        Long id = positiveLong("id", param.apply("id"), errors);
        Long before = positiveLong("before", param.apply("before"), errors);
        String queue = text("queue", param.apply("queue"), errors);
        String kind = text("kind", param.apply("kind"), errors);
        String owner = text("owner", param.apply("owner"), errors);
        String status = blankToNull(param.apply("status"));
        if (status != null && !STATUSES.contains(status)) {
            errors.add("status=" + shorten(status) + " is not a task status; valid: " + String.join(", ", STATUSES));
        }
        OffsetDateTime from = time("from", param.apply("from"), errors);
        OffsetDateTime to = time("to", param.apply("to"), errors);
        if (from != null && to != null && !from.isBefore(to)) {
            errors.add("from=" + param.apply("from") + " must be before to=" + param.apply("to"));
        }
        if (!errors.isEmpty()) return new Parsed(null, null, errors);
        return new Parsed(new TaskFilter(id, queue, kind, status, owner, from, to), before, errors);
    }

    private static Long positiveLong(String name, String raw, List<String> errors) {
        String v = blankToNull(raw);
        if (v == null) return null;
        try {
            long n = Long.parseLong(v);
            if (n > 0) return n;
        } catch (NumberFormatException e) {
            // reported below
        }
        errors.add(name + "=" + shorten(v) + " must be a task id: a whole number from 1 to " + Long.MAX_VALUE);
        return null;
    }

    private static String text(String name, String raw, List<String> errors) {
        String v = blankToNull(raw);
        if (v != null && v.length() > MAX_TEXT) {
            errors.add(name + " is " + v.length() + " characters long; at most " + MAX_TEXT);
            return null;
        }
        return v;
    }

    /** {@code 2026-11-28T10:15} (a browser's datetime-local, read as UTC) or with an offset. */
    private static OffsetDateTime time(String name, String raw, List<String> errors) {
        String v = blankToNull(raw);
        if (v == null) return null;
        try {
            return OffsetDateTime.parse(v);
        } catch (DateTimeParseException e) {
            try {
                return LocalDateTime.parse(v).atOffset(ZoneOffset.UTC);
            } catch (DateTimeParseException e2) {
                errors.add(name + "=" + shorten(v) + " must be a time like 2026-11-28T10:15 (UTC) or 2026-11-28T10:15:00+01:00");
                return null;
            }
        }
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }

    /** An echoed value is cut so a huge parameter does not make a huge message. */
    private static String shorten(String s) {
        return s.length() <= 60 ? s : s.substring(0, 59) + "…";
    }
}

package pgdispatch.store;

import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What makes a task unique beyond its kind: its queue ({@code byQueue}), payload fields
 * ({@code payloadFields}: none, some top-level fields, or {@code ["*"]} for the whole payload), a time
 * bucket ({@code period}, null for none), and the statuses besides waiting, pending and running in which
 * the key stays taken ({@code alsoHeldWhen}: e.g. succeeded, so that one run per period is all). The
 * database computes the key ({@code pgdispatch_unique_key}) and enforces it (a partial unique index), so
 * plain SQL producers get the same rule (docs/SQL_CONTRACT.md).
 */
public record UniqueKey(boolean byQueue, List<String> payloadFields, Duration period, Set<TaskStatus> alsoHeldWhen) {
    /** The statuses a key is always held in: a task moves between them on its own (retries, requeues). */
    public static final List<String> ALWAYS_HELD = List.of("waiting", "pending", "running");
    public static final Duration MAX_PERIOD = Duration.ofDays(366);
    private static final Set<TaskStatus> FINISHED = EnumSet.of(TaskStatus.SUCCEEDED, TaskStatus.FAILED,
            TaskStatus.CANCELLED, TaskStatus.QUARANTINED);
    private static final Pattern FIELD = Pattern.compile("\\*|[^\\s]{1,100}");

    public UniqueKey {
        payloadFields = payloadFields == null ? List.of() : List.copyOf(payloadFields);
        alsoHeldWhen = alsoHeldWhen == null || alsoHeldWhen.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(alsoHeldWhen));
        if (payloadFields.size() > 20) {
            throw new IllegalArgumentException("unique payload fields: at most 20, got " + payloadFields.size());
        }
        for (String f : payloadFields) {
            if (f == null || !FIELD.matcher(f).matches()) {
                throw new IllegalArgumentException("unique payload field '" + f + "' must be 1-100 characters without"
                        + " spaces (a top-level field name), or * for the whole payload");
            }
        }
        if (payloadFields.contains("*") && payloadFields.size() > 1) {
            throw new IllegalArgumentException("unique payload fields: * (the whole payload) stands alone, got " + payloadFields);
        }
        if (period != null && (period.compareTo(Duration.ofSeconds(1)) < 0 || period.compareTo(MAX_PERIOD) > 0)) {
            throw new IllegalArgumentException("unique period=" + period + " must be from 1 second to 366 days");
        }
        for (TaskStatus s : alsoHeldWhen) {
            if (!FINISHED.contains(s)) {
                throw new IllegalArgumentException("unique states: " + s.sql() + " is always held; name only finished"
                        + " statuses (succeeded, failed, cancelled, quarantined)");
            }
        }
    }

    /** Unique by kind alone, while waiting, pending or running. */
    public static UniqueKey byKind() {
        return new UniqueKey(false, List.of(), null, Set.of());
    }

    public UniqueKey withQueue() {
        return new UniqueKey(true, payloadFields, period, alsoHeldWhen);
    }

    /** Adds top-level payload fields to the key ({@code "*"}: the whole payload). */
    public UniqueKey withPayloadFields(String... fields) {
        return new UniqueKey(byQueue, List.of(fields), period, alsoHeldWhen);
    }

    public UniqueKey withPeriod(Duration p) {
        return new UniqueKey(byQueue, payloadFields, p, alsoHeldWhen);
    }

    /** Keeps the key taken in these finished statuses too (e.g. succeeded: at most one success per period). */
    public UniqueKey alsoHeldWhen(TaskStatus... statuses) {
        return new UniqueKey(byQueue, payloadFields, period, Set.of(statuses));
    }

    /** The {@code unique_states} column: the always-held statuses, then the chosen finished ones. */
    public String[] states() {
        List<String> s = new ArrayList<>(ALWAYS_HELD);
        for (TaskStatus t : TaskStatus.values()) if (alsoHeldWhen.contains(t)) s.add(t.sql());
        return s.toArray(String[]::new);
    }

    /** The {@code p_fields} argument of {@code pgdispatch_unique_key}: null when the payload is not part of the key. */
    public String[] fieldsArgument() {
        return payloadFields.isEmpty() ? null : payloadFields.toArray(String[]::new);
    }
}

package pgdispatch.store;

import java.time.Duration;
import java.util.List;

/**
 * Which tasks a bulk operator action (or its dry run) takes: those in one of {@code statuses}, and,
 * where given (null = any), of {@code kind}, in {@code queue}, last changed ({@code updated_at}) more
 * than {@code olderThan} ago; at most {@code limit}, lowest id first.
 */
public record TaskFilter(List<TaskStatus> statuses, String kind, String queue, Duration olderThan, int limit) {
    /** The most one statement takes: larger sets are worked off by running the action again. */
    public static final int MAX_LIMIT = 100_000;

    public TaskFilter {
        statuses = List.copyOf(statuses);
        if (statuses.isEmpty()) throw new IllegalArgumentException("TaskFilter.statuses must not be empty");
        if (limit < 1 || limit > MAX_LIMIT) {
            throw new IllegalArgumentException("TaskFilter.limit must be from 1 to " + MAX_LIMIT + ", got " + limit);
        }
        if (olderThan != null && olderThan.isNegative()) {
            throw new IllegalArgumentException("TaskFilter.olderThan must not be negative, got " + olderThan);
        }
    }
}

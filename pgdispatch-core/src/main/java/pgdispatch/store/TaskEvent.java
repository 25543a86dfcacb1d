package pgdispatch.store;

import java.util.Locale;

/**
 * The {@code task_events.event} names: a stable contract that ops queries and alerts rely on
 * (docs/TASK_LEASES.md). Never rename one; add new ones in a migration that widens the CHECK.
 */
public enum TaskEvent {
    CLAIMED, SUCCEEDED, RETRY_SCHEDULED, FAILED, REQUEUED, QUARANTINED, LEASE_LOST, COMPLETION_REFUSED,
    RECOVERED_ON_STARTUP, RELEASED, CANCELLED, RETRIED_BY_OPERATOR;

    public String sql() {
        return name().toLowerCase(Locale.ROOT);
    }
}

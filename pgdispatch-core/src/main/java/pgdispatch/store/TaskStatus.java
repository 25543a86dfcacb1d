package pgdispatch.store;

import java.util.Locale;

/** The {@code tasks.status} values, spelled as in the schema's CHECK constraint (ops queries grep them). */
public enum TaskStatus {
    /** enqueued with dependencies that have not all ended yet (V12_2): never claimed, released by the database */
    WAITING,
    PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, QUARANTINED,
    /** waiting for (or between attempts of) its compensation step (V10_5); claimable like pending */
    COMPENSATING,
    /** its compensation succeeded: terminal */
    COMPENSATED;

    public String sql() {
        return name().toLowerCase(Locale.ROOT);
    }

    public boolean terminal() {
        return this == SUCCEEDED || this == FAILED || this == CANCELLED || this == QUARANTINED || this == COMPENSATED;
    }

    /** The status spelled {@code sql}; once per completed task, so the common ones are matched without a copy. */
    public static TaskStatus of(String sql) {
        return switch (sql) {
            case "succeeded" -> SUCCEEDED;
            case "pending" -> PENDING;
            case "failed" -> FAILED;
            default -> valueOf(sql.toUpperCase(Locale.ROOT));
        };
    }
}

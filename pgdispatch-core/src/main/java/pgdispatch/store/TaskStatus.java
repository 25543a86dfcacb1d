package pgdispatch.store;

import java.util.Locale;

/** The {@code tasks.status} values, spelled as in the schema's CHECK constraint (ops queries grep them). */
public enum TaskStatus {
    PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, QUARANTINED;

    public String sql() {
        return name().toLowerCase(Locale.ROOT);
    }

    public boolean terminal() {
        return this == SUCCEEDED || this == FAILED || this == CANCELLED || this == QUARANTINED;
    }

    public static TaskStatus of(String sql) {
        return valueOf(sql.toUpperCase(Locale.ROOT));
    }
}

package pgdispatch.store;

import java.util.Locale;

/**
 * What a waiting task does when one of its dependencies ends other than succeeded (failed, cancelled,
 * quarantined, compensated): the {@code tasks.on_dependency_failure} values (V12_2).
 */
public enum DependencyFailure {
    /** the waiting task is cancelled, its last_error naming the dependency and its status (the default) */
    CANCEL,
    /** the dependency counts as done: the task runs once every dependency has ended, however */
    RUN;

    public String sql() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static DependencyFailure of(String sql) {
        return valueOf(sql.toUpperCase(Locale.ROOT));
    }
}

package pgdispatch.store;

import org.postgresql.util.PSQLException;

/**
 * An enqueue refused by a rule of task dependencies (V12_2's insert trigger): a dependency that does not
 * exist ({@link #missingTaskId()}), a task depending on itself, an empty list. The message is the
 * database's, naming the rule.
 */
public final class DependencyRefusedException extends IllegalArgumentException {
    private final Long missingTaskId;

    public DependencyRefusedException(String message, Long missingTaskId) {
        super(message);
        this.missingTaskId = missingTaskId;
    }

    /** The dependency that does not exist, or null when another rule refused the task. */
    public Long missingTaskId() {
        return missingTaskId;
    }

    /** The refusal {@code e} carries (somewhere in its causes), or null when it is another error. */
    static DependencyRefusedException from(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof PSQLException pe && pe.getServerErrorMessage() != null) {
                var m = pe.getServerErrorMessage();
                String constraint = m.getConstraint();
                if ("tasks_depends_on_exist".equals(constraint)) {
                    String d = m.getDetail();
                    Long missing = d != null && d.startsWith("missing_task_id=")
                            ? Long.valueOf(d.substring("missing_task_id=".length())) : null;
                    return new DependencyRefusedException(m.getMessage(), missing);
                }
                if ("tasks_depends_on_check".equals(constraint) || "tasks_on_dependency_failure_check".equals(constraint)) {
                    return new DependencyRefusedException(m.getMessage(), null);
                }
            }
        }
        return null;
    }
}

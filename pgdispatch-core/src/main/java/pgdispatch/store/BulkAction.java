package pgdispatch.store;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The operator transitions that can be applied to many tasks at once ({@link TaskStore#applyMatching}),
 * with the statuses each may start from and the ones it takes when the operator names none.
 */
public enum BulkAction {
    /** → pending with a fresh attempt series; by default only failed, cancelled and quarantined (a succeeded task re-runs only when asked). */
    RETRY("retry", EnumSet.of(TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUARANTINED),
            EnumSet.of(TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUARANTINED)),
    /** → cancelled; a running handler learns it at its next renewal and its result is refused. */
    CANCEL("cancel", EnumSet.of(TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.RUNNING),
            EnumSet.of(TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.RUNNING)),
    /** → quarantined, set aside for inspection. */
    QUARANTINE("quarantine", EnumSet.of(TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED),
            EnumSet.of(TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED));

    private final String word;
    private final Set<TaskStatus> allowed;
    private final Set<TaskStatus> defaults;

    BulkAction(String word, Set<TaskStatus> allowed, Set<TaskStatus> defaults) {
        this.word = word;
        this.allowed = allowed;
        this.defaults = defaults;
    }

    /** The verb as the CLI spells it. */
    public String word() {
        return word;
    }

    public Set<TaskStatus> allowed() {
        return allowed;
    }

    /**
     * The statuses to act on: {@code requested} (checked against what this action allows, the message
     * naming both), or the defaults when null.
     */
    public List<TaskStatus> statuses(TaskStatus requested) {
        if (requested == null) return List.copyOf(defaults);
        if (!allowed.contains(requested)) {
            throw new IllegalArgumentException("--status=" + requested.sql() + ": " + word + " applies only to "
                    + allowed.stream().map(TaskStatus::sql).collect(Collectors.joining(", ")));
        }
        return List.of(requested);
    }
}

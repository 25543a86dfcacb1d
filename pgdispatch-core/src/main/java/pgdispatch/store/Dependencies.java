package pgdispatch.store;

import java.util.List;

/**
 * The tasks a new task waits for ({@code tasks.depends_on}, V12_2) and what it does when one of them ends
 * other than succeeded. Every id must name a task that exists already: the insert refuses others
 * ({@link DependencyRefusedException}), which is what keeps cycles impossible.
 */
public record Dependencies(List<Long> ids, DependencyFailure onFailure) {
    /** At most this many dependencies per task (tasks_depends_on_check). */
    public static final int MAX = 1000;

    public Dependencies {
        ids = List.copyOf(ids);
        if (onFailure == null) onFailure = DependencyFailure.CANCEL;
    }

    Long[] array() {
        return ids.toArray(Long[]::new);
    }
}

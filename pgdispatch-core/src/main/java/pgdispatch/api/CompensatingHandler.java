package pgdispatch.api;

/**
 * A {@link TaskHandler} whose work can be undone: a saga step. Implement this interface instead of
 * {@code TaskHandler} to declare {@link #compensate}; a handler that does not implement it behaves
 * exactly as before (its tasks end failed or cancelled).
 *
 * <p>When a task of this kind ends as failed (attempts exhausted, {@link PermanentFailure}, stuck on its
 * last attempt) or is cancelled after it had started (attempts &gt; 0), it does not end there: it goes
 * to {@code compensating} and {@link #compensate} runs as its own step, claimed by any node serving the
 * kind with a compensating handler, under a lease and a fresh fencing token like any attempt (renewed,
 * judged stuck, taken over when its node dies). The step has its own attempt budget (the task's
 * {@code max_attempts}, counted afresh; {@link TaskContext#attempt()} is the compensation attempt) and
 * the kind's retry back-off. It ends {@code compensated}, or {@code quarantined} when it exhausts its
 * attempts or throws {@link PermanentFailure}, with both errors kept ({@code last_error}: the original;
 * {@code compensation_error}: the compensation's). See docs/TASK_LEASES.md.
 *
 * <p>Since a node may die mid-compensation and another take over, {@code compensate} must be
 * idempotent, as {@code handle} must: only one {@code compensated} outcome is ever accepted.
 */
public interface CompensatingHandler extends TaskHandler {
    /**
     * Undoes what {@link #handle} may have done. The context is the task's (payload, progress
     * checkpoint, heartbeats); {@link TaskContext#compensating()} is true. Throw to fail this
     * compensation attempt.
     */
    void compensate(TaskContext context) throws Exception;

    /** Whether {@code handler} declares a compensation. */
    static boolean declaredBy(TaskHandler handler) {
        return handler instanceof CompensatingHandler;
    }
}

package pgdispatch.api;

import java.time.Duration;

/**
 * The code that runs tasks of one {@link #kind()}. Return a result (a JSON-serialisable value, stored
 * in {@code tasks.result}); throw to fail the attempt ({@link PermanentFailure} to fail it for good).
 * A handler must honour interruption: it is interrupted when its lease is lost, its task cancelled or
 * its {@link #timeout()} passed, and whatever it returns then is discarded.
 */
public interface TaskHandler {
    String kind();

    Object handle(TaskContext context) throws Exception;

    /** This kind's lease, when it differs from {@code TASK_LEASE_S}; null = the node's default. */
    default Duration lease() {
        return null;
    }

    /** Longest an attempt may run before it is interrupted and failed; null = no limit. */
    default Duration timeout() {
        return null;
    }

    /**
     * When an attempt of this kind is stuck and what then happens ({@link StuckPolicy#DEFAULT}: judged only
     * once the handler reports progress); null = never judged stuck.
     */
    default StuckPolicy stuckPolicy() {
        return StuckPolicy.DEFAULT;
    }

    /** How many times one attempt may {@link TaskContext#extendLease extend} its lease (seed 003: two grants). */
    default int maxLeaseExtensions() {
        return 2;
    }
}

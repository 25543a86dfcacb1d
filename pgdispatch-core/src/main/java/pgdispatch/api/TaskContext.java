package pgdispatch.api;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Optional;

/** What a running handler knows about its task and can tell the dispatcher. */
public interface TaskContext {
    long taskId();

    String queue();

    String kind();

    /** The task's payload, a JSON object. */
    JsonNode payload();

    /**
     * The payload read into {@code type} (a record or bean; fields it lacks are ignored). A payload that
     * does not fit fails the task for good: another attempt would read the same payload.
     */
    default <T> T payload(Class<T> type) {
        try {
            return TaskClient.TYPED.treeToValue(payload(), type);
        } catch (com.fasterxml.jackson.core.JsonProcessingException | IllegalArgumentException e) {
            throw new PermanentFailure("task " + taskId() + " (" + kind() + "): payload does not fit "
                    + type.getName() + ": " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /** 1 for the first attempt. */
    int attempt();

    int maxAttempts();

    /** The fencing token of this attempt's lease. */
    long leaseToken();

    /** The checkpoint the previous attempt saved with {@link #heartbeat}, if any. */
    Optional<JsonNode> previousProgress();

    /**
     * What the attempt before this one left: its owner, how and why it ended (failed with an error, stuck,
     * its node died, its lease expired, released at shutdown, cancelled...), when, how long it ran, and the
     * last checkpoint and progress message. Empty for a first attempt. Read from the audit trail when
     * called (one query), never on the claim path; may throw {@code StoreException} when the database is
     * unreachable.
     */
    Optional<PreviousAttempt> previousAttempt();

    /**
     * Reports progress: the attempt's progress time moves (the node's renewals keep the lease but do not
     * count as progress), its cadence is learnt from these reports, and {@code progress} (any
     * JSON-serialisable value, may be null) and {@code message} are saved as the checkpoint and message
     * the next attempt will see ({@link #previousProgress}). A handler that reports is judged stuck when
     * it falls silent for several times its own cadence ({@link TaskHandler#stuckPolicy}). False when the
     * lease is lost: stop working, the result will be discarded.
     */
    boolean heartbeat(Object progress, String message);

    /**
     * Asks for {@code time} without progress reports (a long silent step): until then the attempt is not
     * judged stuck and its lease does not expire. Granted at most {@link TaskHandler#maxLeaseExtensions}
     * times per attempt, each recorded as a {@code lease_extended} event; beyond that refused
     * ({@code extension_refused}) and false is returned: the handler should report progress, finish, or
     * expect to be judged by its cadence. False also when the lease is lost.
     */
    boolean extendLease(java.time.Duration time, String reason);

    /**
     * True once this node learned that the lease is gone (taken over, requeued, cancelled, timed out,
     * or the node is shutting down): the handler should stop; its result will be discarded.
     */
    boolean leaseLost();

    /**
     * True when this run is the task's compensation step ({@link CompensatingHandler#compensate}), not
     * an attempt of {@code handle}; {@link #attempt()} then counts compensation attempts.
     */
    default boolean compensating() {
        return false;
    }
}

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

    /** 1 for the first attempt. */
    int attempt();

    int maxAttempts();

    /** The fencing token of this attempt's lease. */
    long leaseToken();

    /** The checkpoint the previous attempt saved with {@link #heartbeat}, if any. */
    Optional<JsonNode> previousProgress();

    /**
     * Renews this task's lease now and saves {@code progress} (any JSON-serialisable value, may be null)
     * and {@code message} as the checkpoint the next attempt will see. False when the lease is lost: stop
     * working, the result will be discarded.
     */
    boolean heartbeat(Object progress, String message);

    /**
     * True once this node learned that the lease is gone (taken over, requeued, cancelled, timed out,
     * or the node is shutting down): the handler should stop; its result will be discarded.
     */
    boolean leaseLost();
}

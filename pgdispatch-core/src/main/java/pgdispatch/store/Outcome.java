package pgdispatch.store;

import java.time.Duration;

/** How an attempt ended, as the completer writes it: fenced by the task's lease token. */
public sealed interface Outcome {
    long id();

    long leaseToken();

    /** The handler returned; {@code resultJson} is a JSON text or null. */
    record Success(long id, long leaseToken, String resultJson) implements Outcome {}

    /**
     * The handler threw: retried after {@code retryDelay} while attempts remain, unless {@code permanent};
     * {@code error} is already bounded in length. {@code note} (usually null) goes into the event's
     * detail: why the node wrote this failure in place of what the handler gave.
     */
    record Failure(long id, long leaseToken, String error, boolean permanent, Duration retryDelay, String note)
            implements Outcome {
        public Failure(long id, long leaseToken, String error, boolean permanent, Duration retryDelay) {
            this(id, leaseToken, error, permanent, retryDelay, null);
        }
    }
}

package pgdispatch.store;

import java.time.Duration;

/**
 * A lease this node believes it holds, as the renewal presents it. {@code outcomePending}: the handler
 * has finished and its outcome is on its way to the database; the renewal keeps such a lease alive but
 * does not call it lost when it was not renewed (the outcome's own write decides: accepted, or
 * recorded as completion_refused). {@code retryDelay}: the back-off before the next attempt should the
 * renewal judge this one stuck and fail it; {@code kind} selects its stuck rule (null: none).
 */
public record HeldLease(long id, long leaseToken, Duration lease, boolean outcomePending, Duration retryDelay,
                        String kind) {
    public HeldLease(long id, long leaseToken, Duration lease, boolean outcomePending) {
        this(id, leaseToken, lease, outcomePending, Duration.ZERO, null);
    }

    public HeldLease(long id, long leaseToken, Duration lease) {
        this(id, leaseToken, lease, false);
    }
}

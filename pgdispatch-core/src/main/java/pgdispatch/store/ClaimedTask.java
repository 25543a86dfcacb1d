package pgdispatch.store;

import java.time.Duration;

/**
 * A task this node now holds: its identity, input and the fencing {@code leaseToken} every later write
 * must present. {@code previousOwner} is set when the claim took over an expired lease.
 * {@code compensating}: this is the task's compensation step (V10_5): run the handler's
 * {@code compensate}, not {@code handle}.
 */
public record ClaimedTask(long id, String queue, String kind, String payloadJson, int attempt, int maxAttempts,
                          long leaseToken, String progressJson, int requeueCount, Duration lease,
                          String previousOwner, boolean compensating) {
    public boolean tookOver() {
        return previousOwner != null;
    }
}

package pgdispatch.store;

import java.time.Duration;
import java.util.Set;
import java.util.List;
import java.util.Map;

/**
 * What one claim asks for: up to {@code limit} due tasks of {@code queues} whose kind is a key of
 * {@code leaseByKind} (the node's handlers, each with its lease), for {@code owner}; expired leases are
 * taken over only when {@code takeOverExpired} and while the task's requeue count is below
 * {@code maxRequeue}. Looking for expired leases reads every running row (their expiry is deliberately
 * not indexed, so renewals stay HOT updates): the claim loop asks for it about once per poll interval,
 * not in every claim. A candidate whose payload exceeds {@code maxPayloadBytes} is quarantined, not
 * claimed: no more than that is loaded per task. {@code compensatingKinds}: the kinds (among
 * {@code leaseByKind}'s) whose handler here declares {@code compensate}: their claims mark the task
 * compensable, and their waiting compensation steps are claimed too. {@code lockedLimits} are the keys
 * ({@code kind:K}, {@code queue:Q}) of the concurrency limits the claim locks and counts; a limit not
 * among them admits none of its tasks.
 */
public record ClaimRequest(String owner, List<String> queues, Map<String, Duration> leaseByKind, int limit,
                           int maxRequeue, boolean takeOverExpired, int maxPayloadBytes, Set<String> compensatingKinds,
                           List<String> lockedLimits) {
    /** {@code TASK_MAX_PAYLOAD_BYTES}'s default. */
    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20;

    public ClaimRequest {
        queues = List.copyOf(queues);
        leaseByKind = Map.copyOf(leaseByKind);
        compensatingKinds = Set.copyOf(compensatingKinds);
        lockedLimits = lockedLimits == null ? List.of() : List.copyOf(lockedLimits);
        if (limit < 1) throw new IllegalArgumentException("ClaimRequest.limit must be > 0, got " + limit);
        if (maxPayloadBytes < 1) throw new IllegalArgumentException("ClaimRequest.maxPayloadBytes must be > 0, got " + maxPayloadBytes);
    }

    /** A claim that holds no concurrency limit's lock: it takes no task a limit covers. */
    public ClaimRequest(String owner, List<String> queues, Map<String, Duration> leaseByKind, int limit, int maxRequeue,
                        boolean takeOverExpired, int maxPayloadBytes, Set<String> compensatingKinds) {
        this(owner, queues, leaseByKind, limit, maxRequeue, takeOverExpired, maxPayloadBytes, compensatingKinds, List.of());
    }

    /** A claim of kinds none of which compensates. */
    public ClaimRequest(String owner, List<String> queues, Map<String, Duration> leaseByKind, int limit, int maxRequeue,
                        boolean takeOverExpired, int maxPayloadBytes) {
        this(owner, queues, leaseByKind, limit, maxRequeue, takeOverExpired, maxPayloadBytes, Set.of(), List.of());
    }

    /** A claim under the default payload bound. */
    public ClaimRequest(String owner, List<String> queues, Map<String, Duration> leaseByKind, int limit, int maxRequeue,
                        boolean takeOverExpired) {
        this(owner, queues, leaseByKind, limit, maxRequeue, takeOverExpired, DEFAULT_MAX_PAYLOAD_BYTES);
    }

    /** A claim that also takes over expired leases. */
    public ClaimRequest(String owner, List<String> queues, Map<String, Duration> leaseByKind, int limit, int maxRequeue) {
        this(owner, queues, leaseByKind, limit, maxRequeue, true);
    }

    /** The same claim locking (and so admitting tasks of) these limits ({@code LimitStore.keysFor}). */
    public ClaimRequest withLockedLimits(List<String> keys) {
        return new ClaimRequest(owner, queues, leaseByKind, limit, maxRequeue, takeOverExpired, maxPayloadBytes,
                compensatingKinds, keys);
    }
}

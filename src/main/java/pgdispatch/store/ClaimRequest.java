package pgdispatch.store;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * What one claim asks for: up to {@code limit} due tasks of {@code queues} whose kind is a key of
 * {@code leaseByKind} (the node's handlers, each with its lease), for {@code owner}; expired leases are
 * taken over only while the task's requeue count is below {@code maxRequeue}.
 */
public record ClaimRequest(String owner, List<String> queues, Map<String, Duration> leaseByKind, int limit,
                           int maxRequeue) {
    public ClaimRequest {
        queues = List.copyOf(queues);
        leaseByKind = Map.copyOf(leaseByKind);
        if (limit < 1) throw new IllegalArgumentException("ClaimRequest.limit must be > 0, got " + limit);
    }
}

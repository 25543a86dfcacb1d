package pgdispatch.store;

import java.util.Map;
import java.util.Set;

/**
 * One renewal tick: the ids renewed, the ids lost with the status the row had when it was lost
 * (e.g. {@code cancelled}, {@code pending} after a requeue, {@code running} under another owner), whether
 * this incarnation still holds its node registration, and the ids the tick judged stuck and ended,
 * with the error text it stored.
 */
public record RenewResult(Set<Long> renewed, Map<Long, String> lost, boolean nodeRegistered, Map<Long, String> stuck) {
    public RenewResult(Set<Long> renewed, Map<Long, String> lost, boolean nodeRegistered) {
        this(renewed, lost, nodeRegistered, Map.of());
    }
}

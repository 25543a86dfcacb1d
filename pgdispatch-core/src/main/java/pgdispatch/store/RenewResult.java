package pgdispatch.store;

import java.util.Map;
import java.util.Set;

/**
 * One renewal tick: the ids renewed, the ids lost with the status the row had when it was lost
 * (e.g. {@code cancelled}, {@code pending} after a requeue, {@code running} under another owner), and
 * whether this incarnation still holds its node registration.
 */
public record RenewResult(Set<Long> renewed, Map<Long, String> lost, boolean nodeRegistered) {}

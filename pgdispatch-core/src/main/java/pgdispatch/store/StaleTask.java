package pgdispatch.store;

/** A running row the reaper found stale: what it will do ({@code requeue} or {@code quarantine}) and why. */
public record StaleTask(long id, String owner, long leaseToken, String action, String reason) {}

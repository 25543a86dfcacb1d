package pgdispatch.store;

import java.time.Duration;

/** A lease this node believes it holds, as the renewal presents it. */
public record HeldLease(long id, long leaseToken, Duration lease) {}

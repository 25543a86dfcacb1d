package pgdispatch.api;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The delay before a failed attempt's retry: {@code base * 2^(attempt-1)}, capped, with ±{@code jitter}
 * spread so that tasks failing together do not come back together.
 */
public record RetryPolicy(Duration base, Duration cap, double jitter) {
    public static final RetryPolicy DEFAULT = new RetryPolicy(Duration.ofSeconds(1), Duration.ofHours(1), 0.2);

    public RetryPolicy {
        if (base.isNegative()) throw new IllegalArgumentException("RetryPolicy.base must be >= 0, got " + base);
        if (cap.compareTo(base) < 0) throw new IllegalArgumentException("RetryPolicy.cap " + cap + " must be >= base " + base);
        if (jitter < 0 || jitter >= 1) throw new IllegalArgumentException("RetryPolicy.jitter must be in [0, 1), got " + jitter);
    }

    /** The delay after failed attempt number {@code attempt} (1 = the first). */
    public Duration delay(int attempt) {
        int shift = Math.min(Math.max(attempt - 1, 0), 30);
        long ms = Math.min(cap.toMillis(), base.toMillis() << shift);
        if (jitter > 0 && ms > 0) {
            ms = Math.round(ms * (1 + ThreadLocalRandom.current().nextDouble(-jitter, jitter)));
        }
        return Duration.ofMillis(Math.max(ms, 0));
    }
}

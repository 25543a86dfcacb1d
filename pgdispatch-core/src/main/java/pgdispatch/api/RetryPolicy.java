package pgdispatch.api;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The delay before a failed attempt's retry: {@code d = min(cap, base * 2^(attempt-1))}, then spread
 * uniformly over {@code [d * (1 - jitter), min(cap, d * (1 + jitter))]} so that tasks failing together do
 * not come back together. The cap stays a cap: jitter never pushes a delay past it (issue 11: an
 * attempt was given 1 h 10 min against a 1 h cap).
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
        long capMs = cap.toMillis();
        long baseMs = base.toMillis();
        // base << shift overflows past 2^63 for a base of years: compare before shifting
        long ms = baseMs > (capMs >> shift) ? capMs : Math.min(capMs, baseMs << shift);
        if (jitter > 0 && ms > 0) {
            double low = ms * (1 - jitter);
            double high = Math.min((double) capMs, ms * (1 + jitter));
            ms = high > low ? Math.round(ThreadLocalRandom.current().nextDouble(low, high)) : Math.round(low);
        }
        return Duration.ofMillis(Math.min(Math.max(ms, 0), capMs));
    }
}

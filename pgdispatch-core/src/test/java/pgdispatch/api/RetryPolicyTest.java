package pgdispatch.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The backoff: doubling from the base, capped, jitter within bounds and never past the cap (issue 11, item 9). */
class RetryPolicyTest {
    private static final int SAMPLES = 10_000;

    @Test
    void withoutJitterDoublesFromTheBaseUpToTheCap() {
        RetryPolicy p = new RetryPolicy(Duration.ofSeconds(1), Duration.ofSeconds(60), 0);
        assertThat(p.delay(1)).hasSeconds(1);
        assertThat(p.delay(2)).hasSeconds(2);
        assertThat(p.delay(3)).hasSeconds(4);
        assertThat(p.delay(6)).hasSeconds(32);
        assertThat(p.delay(7)).hasSeconds(60);
        assertThat(p.delay(1000)).hasSeconds(60);
        assertThat(p.delay(0)).as("attempt numbers start at 1").hasSeconds(1);
    }

    @Test
    void jitterNeverPushesADelayPastTheCapRegression1h10m() {
        // issue 11: an attempt was given 1 h 10 min against the default 1 h cap
        RetryPolicy p = RetryPolicy.DEFAULT;
        for (int attempt = 1; attempt <= 40; attempt++) {
            for (int i = 0; i < SAMPLES / 10; i++) {
                assertThat(p.delay(attempt)).isLessThanOrEqualTo(Duration.ofHours(1));
            }
        }
    }

    @Test
    void jitterSpreadsBelowTheCapWithinItsBounds() {
        RetryPolicy p = new RetryPolicy(Duration.ofSeconds(10), Duration.ofHours(1), 0.2);
        long min = Long.MAX_VALUE, max = 0;
        for (int i = 0; i < SAMPLES; i++) {
            long ms = p.delay(3).toMillis(); // 40 s before jitter
            min = Math.min(min, ms);
            max = Math.max(max, ms);
        }
        assertThat(min).isBetween(32_000L, 33_000L);
        assertThat(max).isBetween(47_000L, 48_000L);

        long atCapMin = Long.MAX_VALUE;
        for (int i = 0; i < SAMPLES; i++) atCapMin = Math.min(atCapMin, p.delay(30).toMillis());
        assertThat(atCapMin).as("spread below the cap, not bunched on it").isBetween(2_880_000L, 2_950_000L);
    }

    @Test
    void hugeBaseAndAttemptCountDoNotOverflow() {
        RetryPolicy p = new RetryPolicy(Duration.ofDays(365 * 100), Duration.ofDays(365 * 200), 0);
        assertThat(p.delay(31)).isEqualTo(Duration.ofDays(365 * 200));
        assertThat(new RetryPolicy(Duration.ZERO, Duration.ZERO, 0.2).delay(5)).isZero();
    }

    @Test
    void refusesImpossibleValues() {
        assertThatThrownBy(() -> new RetryPolicy(Duration.ofSeconds(-1), Duration.ofSeconds(1), 0))
                .hasMessage("RetryPolicy.base must be >= 0, got PT-1S");
        assertThatThrownBy(() -> new RetryPolicy(Duration.ofSeconds(10), Duration.ofSeconds(1), 0))
                .hasMessage("RetryPolicy.cap PT1S must be >= base PT10S");
        assertThatThrownBy(() -> new RetryPolicy(Duration.ZERO, Duration.ZERO, 1.0))
                .hasMessage("RetryPolicy.jitter must be in [0, 1), got 1.0");
    }
}

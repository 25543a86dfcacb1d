package pgdispatch.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class PeriodicServiceTest {
    @Test
    void aFailingRunDoesNotEndTheSchedule() {
        AtomicInteger runs = new AtomicInteger();
        PeriodicService s = new PeriodicService("test-failing", Duration.ofMillis(20), () -> {
            runs.incrementAndGet();
            throw new IllegalStateException("boom");
        });
        s.start();
        await().atMost(10, TimeUnit.SECONDS).until(() -> runs.get() >= 3);
        s.stop();
        assertThat(s.running()).isFalse();
    }

    @Test
    void stopWaitsForARunInProgressAndTheThreadIsGone() throws Exception {
        CountDownLatch inRun = new CountDownLatch(1);
        CountDownLatch finish = new CountDownLatch(1);
        AtomicInteger finished = new AtomicInteger();
        PeriodicService s = new PeriodicService("test-midrun", Duration.ofMillis(10), () -> {
            inRun.countDown();
            try {
                finish.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            finished.incrementAndGet();
        });
        s.start();
        assertThat(inRun.await(10, TimeUnit.SECONDS)).isTrue();
        Thread stopper = Thread.ofPlatform().start(s::stop);
        finish.countDown();
        stopper.join(10_000);
        assertThat(stopper.isAlive()).isFalse();
        assertThat(finished.get()).isEqualTo(1);
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().equals("pgdispatch-test-midrun") && t.isAlive());
    }

    @Test
    void stopIsIdempotentAndSafeBeforeStart() {
        PeriodicService s = new PeriodicService("test-idle", Duration.ofSeconds(1), () -> {});
        s.stop();
        s.stop();
        s.start();
        assertThat(s.running()).isFalse();
    }

    @Test
    void rejectsANonPositiveInterval() {
        assertThatThrownBy(() -> new PeriodicService("x", Duration.ZERO, () -> {}))
                .hasMessage("x: interval must be > 0, got PT0S");
    }
}

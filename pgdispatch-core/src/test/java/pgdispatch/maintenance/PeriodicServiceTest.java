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
    void anErrorOfOneRunDoesNotEndTheScheduleEither() {
        AtomicInteger runs = new AtomicInteger();
        PeriodicService s = new PeriodicService("test-error", Duration.ofMillis(20), () -> {
            runs.incrementAndGet();
            throw new StackOverflowError("deep");
        });
        s.start();
        await().atMost(10, TimeUnit.SECONDS).until(() -> runs.get() >= 3);
        s.stop();
    }

    @Test
    void aDelaySupplierShortensThePause() {
        AtomicInteger runs = new AtomicInteger();
        // 5 s between runs, unless the supplier asks for less (the scheduler: until its next fire time)
        PeriodicService s = new PeriodicService("test-delay", Duration.ofSeconds(5), runs::incrementAndGet,
                () -> runs.get() < 3 ? Duration.ofMillis(10) : Duration.ofDays(1));
        s.start();
        try {
            await().atMost(10, TimeUnit.SECONDS).until(() -> runs.get() >= 1); // the first delay is random within 5 s
            await().atMost(2, TimeUnit.SECONDS).until(() -> runs.get() >= 3);  // a fixed 5 s would take 10 s
        } finally {
            s.stop();
        }
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
    void wakeEndsThePauseAndAWakeDuringARunIsKeptForTheNextPause() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        CountDownLatch inSecondRun = new CountDownLatch(1);
        CountDownLatch finishSecondRun = new CountDownLatch(1);
        // the first pause 10 ms, then a day: only wake() can start the runs after the first
        PeriodicService s = new PeriodicService("test-wake", Duration.ofDays(1), () -> {
            if (runs.incrementAndGet() == 2) {
                inSecondRun.countDown();
                try {
                    finishSecondRun.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }, () -> runs.get() == 0 ? Duration.ofMillis(10) : Duration.ofDays(1));
        s.start();
        try {
            await().atMost(5, TimeUnit.SECONDS).until(() -> runs.get() == 1);
            s.wake(); // ends the day-long pause
            assertThat(inSecondRun.await(5, TimeUnit.SECONDS)).isTrue();
            s.wake(); // during the run: the next pause ends at once
            finishSecondRun.countDown();
            await().atMost(5, TimeUnit.SECONDS).until(() -> runs.get() == 3);
        } finally {
            s.stop();
        }
        assertThat(runs.get()).isEqualTo(3);
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

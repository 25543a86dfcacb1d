package pgdispatch.maintenance;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one action on a named daemon thread: a random first delay (so nodes started together do not
 * sweep together), then a fixed delay between runs. Every exception of a run is logged and the schedule
 * goes on. {@link #stop()} is idempotent, safe before {@link #start()}, and returns once the thread is gone.
 * With a {@code delay} supplier, each pause is what it answers after the run, at most the interval (the
 * scheduler sleeps until its next fire time), and the first delay is random within its first answer;
 * {@link #wake()} ends the current pause (or the next, when called during a run).
 */
public final class PeriodicService {
    private static final Logger log = LoggerFactory.getLogger(PeriodicService.class);

    private final String name;
    private final Duration interval;
    private final Runnable action;
    private final Supplier<Duration> delay;
    private final Object lock = new Object();
    private Thread thread;
    private boolean stopped;
    private boolean woken;

    public PeriodicService(String name, Duration interval, Runnable action) {
        this(name, interval, action, () -> interval);
    }

    /** Pauses {@code delay.get()} after each run, clamped to [0, {@code interval}]. */
    public PeriodicService(String name, Duration interval, Runnable action, Supplier<Duration> delay) {
        if (interval.isZero() || interval.isNegative()) {
            throw new IllegalArgumentException(name + ": interval must be > 0, got " + interval);
        }
        this.name = name;
        this.interval = interval;
        this.action = action;
        this.delay = delay;
    }

    public void start() {
        synchronized (lock) {
            if (thread != null || stopped) return;
            thread = Thread.ofPlatform().daemon().name("pgdispatch-" + name).start(this::loop);
        }
    }

    private void loop() {
        long firstDelay = ThreadLocalRandom.current().nextLong(Math.max(1, nextPause()));
        if (!pause(firstDelay)) return;
        while (!Thread.currentThread().isInterrupted()) {
            try {
                action.run();
            } catch (RuntimeException e) {
                log.warn("{}: run failed, next in {} ms: {}", name, interval.toMillis(), e.toString());
            } catch (Throwable e) { // an Error of one run (StackOverflowError, one huge row) must not end the loop
                log.error("{}: run failed, next in {} ms", name, interval.toMillis(), e);
            }
            if (!pause(nextPause())) return;
        }
    }

    private long nextPause() {
        try {
            Duration d = delay.get();
            return Math.max(0, Math.min(interval.toMillis(), d.toMillis()));
        } catch (RuntimeException e) {
            return interval.toMillis();
        }
    }

    private boolean pause(long ms) {
        synchronized (lock) {
            long until = System.nanoTime() + ms * 1_000_000;
            while (!stopped) {
                long left = (until - System.nanoTime()) / 1_000_000;
                if (left <= 0 || woken) {
                    woken = false;
                    return true;
                }
                try {
                    lock.wait(left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            return false;
        }
    }

    /** Runs the action now rather than at the end of the pause; during a run, right after it. */
    public void wake() {
        synchronized (lock) {
            woken = true;
            lock.notifyAll();
        }
    }

    /** Stops the schedule; a run in progress finishes first (each run is one short transaction per batch). */
    public void stop() {
        Thread t;
        synchronized (lock) {
            stopped = true;
            lock.notifyAll();
            t = thread;
        }
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public boolean running() {
        synchronized (lock) {
            return thread != null && thread.isAlive() && !stopped;
        }
    }
}

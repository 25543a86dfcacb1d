package pgdispatch.api;

import java.time.Duration;

/**
 * When a running attempt of a kind counts as stuck and what then happens to it (docs/TASK_LEASES.md,
 * "Stuck"). The owning node judges at each renewal: a handler that has reported progress
 * ({@link TaskContext#heartbeat}) at least twice is stuck once silent for longer than {@code factor} ×
 * its own average interval between reports, but never sooner than {@code floor}; one that reported once,
 * or never while {@code judgeSilent}, once silent for longer than {@code TASK_STALE_S}. A handler that
 * never reports and does not opt in is judged only by its {@link TaskHandler#timeout()}.
 */
public record StuckPolicy(Action action, double factor, Duration floor, boolean judgeSilent) {
    /** What ends a stuck attempt. */
    public enum Action {
        /** The attempt fails (its handler is interrupted): retried after the back-off, or failed when none is left. */
        FAIL_ATTEMPT,
        /** The task goes back to pending at once, its attempt charged, within {@code TASK_MAX_REQUEUE}; beyond, quarantined. */
        REQUEUE
    }

    public static final double DEFAULT_FACTOR = 5;
    public static final Duration DEFAULT_FLOOR = Duration.ofSeconds(60);
    /** Fail the attempt after 5 × the cadence, at least 60 s; handlers that never report are not judged. */
    public static final StuckPolicy DEFAULT = new StuckPolicy(Action.FAIL_ATTEMPT, DEFAULT_FACTOR, DEFAULT_FLOOR, false);

    public StuckPolicy {
        if (action == null) throw new IllegalArgumentException("StuckPolicy.action must be given");
        if (!(factor >= 1)) throw new IllegalArgumentException("StuckPolicy.factor must be >= 1, got " + factor);
        if (floor == null || floor.isNegative() || floor.isZero()) {
            throw new IllegalArgumentException("StuckPolicy.floor must be > 0, got " + floor);
        }
    }

    public StuckPolicy withAction(Action a) {
        return new StuckPolicy(a, factor, floor, judgeSilent);
    }

    public StuckPolicy withFactor(double f) {
        return new StuckPolicy(action, f, floor, judgeSilent);
    }

    public StuckPolicy withFloor(Duration d) {
        return new StuckPolicy(action, factor, d, judgeSilent);
    }

    /** Also judge handlers that never report progress, by {@code TASK_STALE_S}. */
    public StuckPolicy judgingSilentHandlers() {
        return new StuckPolicy(action, factor, floor, true);
    }
}

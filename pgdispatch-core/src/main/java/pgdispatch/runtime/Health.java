package pgdispatch.runtime;

import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Whether a node is doing its work, as {@link Dispatcher#health()} finds it: ready, or one
 * {@link Problem} per part that is not, each with the reason an operator reads. {@code /health/ready}
 * answers 503 with these reasons; {@code pgdispatch status} shows what each node last stored.
 */
public record Health(List<Problem> problems) {

    /** The parts readiness asks; {@link #tag()} is the metric tag and the prefix of a reason. */
    public enum Part {
        /** The dispatcher's lifecycle: not yet started, starting, stopping or stopped. */
        LIFECYCLE,
        /** The node row: another incarnation took this node id. */
        REGISTRATION,
        /** The database: unreachable, or its schema no longer this build's. */
        DATABASE,
        /** The claim loop: has not completed a cycle within its bound. */
        CLAIMER,
        /** The lease renewer: its last tick failed, or none completed within its bound. */
        RENEWER,
        /** The completer: an outcome has waited longer than its bound to be written. */
        COMPLETER,
        /** The scheduler: a run that was due (a fire time, a notified change, the safety interval) has not completed within its bound. */
        SCHEDULER;

        public String tag() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** One part that is not healthy and why (the reason names the figure and its bound). */
    public record Problem(Part part, String reason) {
        @Override
        public String toString() {
            return part.tag() + ": " + reason;
        }
    }

    public Health {
        problems = List.copyOf(problems);
    }

    public static final Health READY = new Health(List.of());

    public boolean ready() {
        return problems.isEmpty();
    }

    /** Null when ready, else every problem as {@code part: reason}, joined by {@code "; "}. */
    public String reason() {
        return ready() ? null : problems.stream().map(Problem::toString).collect(Collectors.joining("; "));
    }

    /**
     * How long each part may go without completing its cycle before readiness says so. A renewal tick
     * runs every {@code TASK_RENEW_S}, so two intervals without one is a missed tick (others declare the
     * node dead after {@code TASK_NODE_TIMEOUT_S}, 3 intervals by default); an outcome is written within
     * milliseconds at any load, so one waiting that long means the completer is stuck; an idle claim
     * loop waits up to 4 poll intervals between cycles, plus one slow statement; the scheduler sleeps until
     * its next run is due, and a run takes milliseconds, so one not done that long after it was due is stuck
     * or failing.
     */
    public record Bounds(Duration renewer, Duration completer, Duration claimer, Duration scheduler) {
        public static Bounds of(Duration renewInterval, Duration pollInterval) {
            Duration stall = renewInterval.multipliedBy(2);
            return new Bounds(stall, stall, stall.plus(pollInterval.multipliedBy(4)), stall);
        }
    }

    /** A duration as "12.3s", for reasons. */
    static String seconds(Duration d) {
        return String.format(java.util.Locale.ROOT, "%.1fs", d.toMillis() / 1000.0);
    }
}

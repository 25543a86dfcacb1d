package pgdispatch.chaos;

import com.fasterxml.jackson.databind.util.RawValue;
import java.time.Duration;
import java.util.Map;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;

/**
 * Handlers that attack the node from the inside (issue 11): the chaos nodes load them through
 * {@code META-INF/services/pgdispatch.api.TaskHandler} of the chaos jar. Each misbehaves the way real
 * handler code does; the node must end every such attempt (a failure, or a result made storable),
 * free its slot and go on, and never report ready while it holds such a task past its bound
 * ({@code stalled} in the summary line). Which variant runs is the payload's {@code "v"}.
 */
public final class FaultyHandlers {
    private FaultyHandlers() {}

    /** The kinds, for the workload. */
    static final String[] KINDS = {"chaos.error", "chaos.refused", "chaos.hang", "chaos.deaf", "chaos.burn"};

    private static int variant(TaskContext c) {
        return c.payload().path("v").asInt(0);
    }

    /** Throws an {@code Error}: a real StackOverflowError, an OutOfMemoryError, an AssertionError. */
    public static final class ThrowsError implements TaskHandler {
        @Override
        public String kind() {
            return "chaos.error";
        }

        @Override
        public Object handle(TaskContext c) {
            switch (variant(c) % 3) {
                case 0 -> {
                    return recurse(0);
                }
                case 1 -> throw new OutOfMemoryError("chaos: thrown by the handler");
                default -> throw new AssertionError("chaos: handler assertion");
            }
        }

        private static int recurse(int depth) {
            return recurse(depth + 1) + 1;
        }
    }

    /** Returns results, or throws messages, that PostgreSQL would refuse as they are. */
    public static final class Refused implements TaskHandler {
        @Override
        public String kind() {
            return "chaos.refused";
        }

        @Override
        public Object handle(TaskContext c) {
            return switch (variant(c) % 4) {
                case 0 -> Map.of("s", "nul \u0000 in a result");
                case 1 -> Map.of("s", "lone \uD800 surrogate");
                case 2 -> new RawValue("{\"not\": [json,}");
                default -> throw new IllegalStateException("nul \u0000 in an error message");
            };
        }
    }

    /** Hangs past its timeout without a heartbeat, but honours the interrupt. */
    public static final class Hangs implements TaskHandler {
        @Override
        public String kind() {
            return "chaos.hang";
        }

        @Override
        public Duration timeout() {
            return Duration.ofSeconds(1);
        }

        @Override
        public Object handle(TaskContext c) throws InterruptedException {
            Thread.sleep(60_000); // a hang, interrupted by the timeout
            return "never";
        }
    }

    /** Ignores the interrupt of its timeout and returns long after it. */
    public static final class Deaf implements TaskHandler {
        @Override
        public String kind() {
            return "chaos.deaf";
        }

        @Override
        public Duration timeout() {
            return Duration.ofMillis(500);
        }

        @Override
        public Object handle(TaskContext c) {
            long until = System.nanoTime() + Duration.ofSeconds(3).toNanos();
            while (System.nanoTime() < until) {
                try {
                    Thread.sleep(Math.max(1, (until - System.nanoTime()) / 1_000_000));
                } catch (InterruptedException ignored) {
                    // deaf to it, on purpose
                }
            }
            return "late";
        }
    }

    /** Burns CPU past its timeout without ever looking at the interrupt flag. */
    public static final class Burns implements TaskHandler {
        @Override
        public String kind() {
            return "chaos.burn";
        }

        @Override
        public Duration timeout() {
            return Duration.ofMillis(200);
        }

        @Override
        public Object handle(TaskContext c) {
            long until = System.nanoTime() + Duration.ofMillis(1200).toNanos();
            long x = 0;
            while (System.nanoTime() < until) x += x * 31 + 7;
            return Map.of("burned", x);
        }
    }
}

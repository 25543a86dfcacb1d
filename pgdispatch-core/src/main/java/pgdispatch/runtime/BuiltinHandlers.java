package pgdispatch.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;

/** The kinds every node runs, for demos, smoke tests and benchmarks: noop, sleep, echo, fail. */
public final class BuiltinHandlers {
    private BuiltinHandlers() {}

    public static List<TaskHandler> all() {
        return List.of(new Noop(), new Sleep(), new Echo(), new Fail());
    }

    /** {@code noop}: returns at once, result null. */
    public static final class Noop implements TaskHandler {
        @Override
        public String kind() {
            return "noop";
        }

        @Override
        public Object handle(TaskContext context) {
            return null;
        }
    }

    /** {@code sleep} {"ms": N}: sleeps N ms (honours interruption), result {"slept_ms": N}. */
    public static final class Sleep implements TaskHandler {
        @Override
        public String kind() {
            return "sleep";
        }

        @Override
        public Object handle(TaskContext context) throws InterruptedException {
            JsonNode ms = context.payload().get("ms");
            if (ms != null && !ms.canConvertToLong()) {
                throw new PermanentFailure("sleep: payload.ms must be a whole number of milliseconds, got " + ms);
            }
            long n = ms == null ? 1000 : ms.asLong();
            if (n < 0) throw new PermanentFailure("sleep: payload.ms must be >= 0, got " + n);
            Thread.sleep(n); // the task's work is to wait; interruption ends it
            return Map.of("slept_ms", n);
        }
    }

    /** {@code echo}: returns its payload as the result. */
    public static final class Echo implements TaskHandler {
        @Override
        public String kind() {
            return "echo";
        }

        @Override
        public Object handle(TaskContext context) {
            return context.payload();
        }
    }

    /** {@code fail} {"times": N}: fails its first N attempts (default: every attempt), then succeeds. */
    public static final class Fail implements TaskHandler {
        @Override
        public String kind() {
            return "fail";
        }

        @Override
        public Object handle(TaskContext context) {
            JsonNode times = context.payload().get("times");
            if (times == null || context.attempt() <= times.asInt()) {
                throw new IllegalStateException("fail: attempt " + context.attempt() + " fails as asked"
                        + (times == null ? "" : " (times=" + times.asInt() + ")"));
            }
            return Map.of("succeeded_on_attempt", context.attempt());
        }
    }
}

package pgdispatch.runtime;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Outcome;
import pgdispatch.store.StoreException;
import pgdispatch.store.TaskStore;

/**
 * One attempt of one task on a worker thread: runs the handler under its timeout, turns what it
 * returned or threw into an {@link Outcome} for the completer, or discards it when the lease is lost.
 */
final class TaskExecution implements Runnable, TaskContext {
    private static final Logger log = LoggerFactory.getLogger(TaskExecution.class);
    static final ObjectMapper JSON = new ObjectMapper();
    /** Longest single lease extension a handler may ask for. */
    static final Duration MAX_EXTENSION = Duration.ofHours(24);

    private final HeldLeases.Held held;
    private final TaskHandler handler;
    private final String owner;
    private final TaskStore store;
    private final Completer completer;
    private final ScheduledExecutorService timeouts;
    private final RetryPolicy retry;
    private final DispatchMetrics metrics;
    private final BooleanSupplier draining;
    private final Runnable onDone;
    private volatile boolean timedOut;
    private JsonNode payload;

    TaskExecution(HeldLeases.Held held, TaskHandler handler, String owner, TaskStore store, Completer completer,
                  ScheduledExecutorService timeouts, RetryPolicy retry, DispatchMetrics metrics, BooleanSupplier draining,
                  Runnable onDone) {
        this.held = held;
        this.handler = handler;
        this.owner = owner;
        this.store = store;
        this.completer = completer;
        this.timeouts = timeouts;
        this.retry = retry;
        this.metrics = metrics;
        this.draining = draining;
        this.onDone = onDone;
        held.retryDelay = retry.delay(held.task.attempt());
    }

    @Override
    public void run() {
        if (draining.getAsBoolean()) {
            // claimed ahead into the local buffer and not started before the node began stopping: it stays
            // held, unfinished, and the stop releases it without charging the attempt
            onDone.run();
            return;
        }
        held.worker = Thread.currentThread();
        ScheduledFuture<?> timer = null;
        long start = System.nanoTime();
        Outcome outcome;
        try {
            if (held.lost()) {
                discard("lease lost before start");
                return;
            }
            Duration timeout = handler.timeout();
            if (timeout != null) {
                Thread worker = Thread.currentThread();
                timer = timeouts.schedule(() -> {
                    timedOut = true;
                    if (!held.finished) worker.interrupt();
                }, timeout.toMillis(), TimeUnit.MILLISECONDS);
            }
            try {
                Object result = handler.handle(this);
                outcome = timedOut ? failure("timed out after " + timeout.toMillis() + " ms", false)
                        : new Outcome.Success(held.task.id(), held.task.leaseToken(), toJson(result));
            } catch (PermanentFailure e) {
                outcome = failure(describe(e), true);
            } catch (InterruptedException e) {
                outcome = failure(timedOut ? "timed out after " + timeout.toMillis() + " ms" : "interrupted", false);
            } catch (Exception | LinkageError | AssertionError | StackOverflowError e) {
                outcome = failure(timedOut ? "timed out after " + timeout.toMillis() + " ms: " + describe(e) : describe(e), false);
            }
        } finally {
            held.finished = true;
            if (timer != null) timer.cancel(false);
            Thread.interrupted(); // clear a late interrupt so it does not leak into the next task on this thread
            metrics.handlerDone(held.task.kind(), System.nanoTime() - start);
        }
        try {
            if (held.lost()) {
                discard(held.lostBecause);
            } else {
                completer.submit(held, outcome);
            }
        } finally {
            onDone.run();
        }
    }

    private void discard(String why) {
        log.info("task={} kind={} owner={} attempt={} lease_token={}: result discarded, lease lost ({})",
                held.task.id(), held.task.kind(), owner, held.task.attempt(), held.task.leaseToken(), why);
        completer.forget(held);
        if (!held.finished) {
            held.finished = true;
            onDone.run();
        }
    }

    private Outcome.Failure failure(String error, boolean permanent) {
        return new Outcome.Failure(held.task.id(), held.task.leaseToken(), TaskStore.truncate(error), permanent,
                retry.delay(held.task.attempt()));
    }

    private static String describe(Throwable e) {
        String msg = e.getMessage();
        return e.getClass().getName() + (msg == null ? "" : ": " + msg);
    }

    private static String toJson(Object result) {
        if (result == null) return null;
        try {
            return JSON.writeValueAsString(result);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("handler result is not JSON-serialisable: " + e.getOriginalMessage(), e);
        }
    }

    // ---- TaskContext

    @Override
    public long taskId() {
        return held.task.id();
    }

    @Override
    public String queue() {
        return held.task.queue();
    }

    @Override
    public String kind() {
        return held.task.kind();
    }

    @Override
    public JsonNode payload() {
        if (payload == null) {
            try {
                payload = JSON.readTree(held.task.payloadJson());
            } catch (JsonProcessingException e) {
                throw new IllegalStateException("task " + taskId() + ": stored payload is not JSON", e);
            }
        }
        return payload;
    }

    @Override
    public int attempt() {
        return held.task.attempt();
    }

    @Override
    public int maxAttempts() {
        return held.task.maxAttempts();
    }

    @Override
    public long leaseToken() {
        return held.task.leaseToken();
    }

    @Override
    public Optional<JsonNode> previousProgress() {
        if (held.task.progressJson() == null) return Optional.empty();
        try {
            JsonNode p = JSON.readTree(held.task.progressJson());
            return Optional.ofNullable(p.get("checkpoint")).filter(n -> !n.isNull());
        } catch (JsonProcessingException e) {
            return Optional.empty();
        }
    }

    @Override
    public boolean heartbeat(Object progress, String message) {
        if (held.lost()) return false;
        try {
            boolean ok = store.heartbeat(owner, taskId(), leaseToken(), held.task.lease(),
                    progress == null ? null : toJson(progress), message);
            if (!ok) HeldLeases.markLost(held, "heartbeat refused");
            return ok;
        } catch (StoreException e) {
            log.warn("task={}: heartbeat failed ({}); the renewal thread keeps trying", taskId(), e.getMessage());
            return !held.lost();
        }
    }

    @Override
    public boolean extendLease(Duration time, String reason) {
        if (time == null || time.isNegative() || time.isZero() || time.compareTo(MAX_EXTENSION) > 0) {
            throw new IllegalArgumentException("task " + taskId() + ": extendLease time=" + time
                    + " must be positive and at most " + MAX_EXTENSION.toHours() + " h");
        }
        if (held.lost()) return false;
        TaskStore.Extension answer;
        try {
            answer = store.extendLease(owner, taskId(), leaseToken(), time, reason, handler.maxLeaseExtensions());
        } catch (StoreException e) {
            log.warn("task={}: lease extension failed ({}); not granted", taskId(), e.getMessage());
            return false;
        }
        switch (answer) {
            case GRANTED -> metrics.leaseExtension(kind(), "granted");
            case REFUSED -> {
                metrics.leaseExtension(kind(), "refused");
                log.warn("task={} kind={} attempt={}: lease extension of {} refused, {} already granted to this attempt ({})",
                        taskId(), kind(), attempt(), time, handler.maxLeaseExtensions(), reason);
            }
            case LEASE_LOST -> HeldLeases.markLost(held, "extension refused: lease lost");
        }
        return answer == TaskStore.Extension.GRANTED;
    }

    @Override
    public boolean leaseLost() {
        return held.lost();
    }
}

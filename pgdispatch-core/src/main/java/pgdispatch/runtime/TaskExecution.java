package pgdispatch.runtime;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.api.CompensatingHandler;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.PreviousAttempt;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Mutant;
import pgdispatch.store.Outcome;
import pgdispatch.store.StorableText;
import pgdispatch.store.StoreException;
import pgdispatch.store.TaskStore;

/**
 * One attempt of one task on a worker thread: runs the handler under its timeout, turns what it
 * returned or threw into an {@link Outcome} for the completer, or discards it when the lease is lost.
 *
 * <p>Whatever the handler does, the attempt ends with its worker slot freed and either an outcome
 * submitted or the lease dropped (issue 11): an {@code Error} from the handler (a
 * {@code StackOverflowError}, an {@code OutOfMemoryError} it threw) is a failed attempt like an
 * exception; an exception from {@code timeout()} too. A handler that ignores its interruption after
 * its timeout is given {@link #abandonGrace} more; then the attempt is failed without it ("ignored
 * interruption"), its slot is freed and the pool starts a replacement thread, and the stuck thread is
 * left to return whenever it does (its result is then discarded and the pool shrinks back).
 */
final class TaskExecution implements Runnable, TaskContext {
    private static final Logger log = LoggerFactory.getLogger(TaskExecution.class);
    static final ObjectMapper JSON = new ObjectMapper();
    /** Longest single lease extension a handler may ask for. */
    static final Duration MAX_EXTENSION = Duration.ofHours(24);
    /** Shortest and longest wait, after a timeout's interrupt, before a handler that ignores it is abandoned. */
    static final Duration MIN_ABANDON_GRACE = Duration.ofSeconds(1);
    static final Duration MAX_ABANDON_GRACE = Duration.ofSeconds(10);

    /** What every attempt on this node shares: built once by the dispatcher. */
    record Node(String owner, TaskStore store, Completer completer, ScheduledExecutorService timeouts, RetryPolicy retry,
                DispatchMetrics metrics, BooleanSupplier draining, int maxResultBytes, WorkerPool workers) {}

    private final HeldLeases.Held held;
    private final TaskHandler handler;
    private final Node node;
    private final String owner;
    /** Called once the worker slot is free, with the nanoseconds the attempt took on its worker thread. */
    private final LongConsumer onDone;
    private final AtomicBoolean settled = new AtomicBoolean();
    private final AtomicBoolean slotFreed = new AtomicBoolean();
    private volatile boolean timedOut;
    /** 0 while the handler runs, then 1 when it returned first, 2 when it was abandoned first. */
    private final AtomicInteger phase = new AtomicInteger();
    private JsonNode payload;
    /** The handler's timeout and abandonment timers, when it has a timeout; cancelled when it returns. */
    private ScheduledFuture<?> timeoutTimer;
    private ScheduledFuture<?> abandonTimer;
    /** {@link System#nanoTime()} when the attempt started on its worker. */
    private volatile long startNanos;
    private Optional<PreviousAttempt> previousAttempt;

    TaskExecution(HeldLeases.Held held, TaskHandler handler, Node node, LongConsumer onDone) {
        this.held = held;
        this.handler = handler;
        this.node = node;
        this.owner = node.owner();
        this.onDone = onDone;
        held.retryDelay = node.retry().delay(held.task.attempt());
    }

    @Override
    public void run() {
        if (node.draining().getAsBoolean()) {
            // claimed ahead into the local buffer and not started before the node began stopping: it stays
            // held, unfinished, and the stop releases it without charging the attempt
            freeSlot(0);
            return;
        }
        held.worker = Thread.currentThread();
        long start = System.nanoTime();
        startNanos = start;
        try {
            settle(runAttempt());
        } catch (Throwable e) {
            // outside the handler's own catch: timeout() threw, or building the outcome failed
            node.metrics().handlerThrowable();
            log.error("task={} kind={} owner={} attempt={} lease_token={}: attempt failed outside the handler", taskId(),
                    kind(), owner, attempt(), leaseToken(), e);
            try {
                settle(failure(describe(e), false));
            } catch (Throwable again) {
                settled.set(true);
                node.completer().forget(held); // nothing can be submitted (out of memory?): the lease expires
            }
        } finally {
            if (timeoutTimer != null) timeoutTimer.cancel(false);
            if (abandonTimer != null) abandonTimer.cancel(false);
            held.finishOnWorker(); // no interrupt for this task arrives after this, nor leaks into the next one
            long took = System.nanoTime() - start;
            try {
                node.metrics().handlerDone(held.task.kind(), took);
            } finally {
                if (!phase.compareAndSet(0, 1)) node.workers().returned(); // abandoned earlier: the pool shrinks back
                freeSlot(took);
            }
        }
    }

    /** The attempt's outcome; null when it was discarded before the handler ran. */
    private Outcome runAttempt() {
        if (held.lost()) {
            settled.set(true);
            discard("lease lost before start");
            return null;
        }
        Duration timeout = handler.timeout();
        if (timeout != null) {
            timeoutTimer = node.timeouts().schedule(() -> {
                timedOut = true;
                held.interruptIfRunning(); // checked and sent under the lock finish() takes (issue 11 item 3a)
            }, timeout.toMillis(), TimeUnit.MILLISECONDS);
            Duration grace = abandonGrace(timeout);
            abandonTimer = node.timeouts().schedule(() -> abandon(timeout, grace), timeout.plus(grace).toMillis(),
                    TimeUnit.MILLISECONDS);
        }
        try {
            Object result;
            if (Mutant.ACTIVE == Mutant.HANDLER_SKIPPED) {
                result = null;
            } else if (held.task.compensating()) {
                ((CompensatingHandler) handler).compensate(this);
                result = null;
            } else {
                result = handler.handle(this);
            }
            return timedOut ? failure(timedOutText(timeout), false) : success(result);
        } catch (PermanentFailure e) {
            return failure(describe(e), true);
        } catch (InterruptedException e) {
            return failure(timedOut ? timedOutText(timeout) : "interrupted", false);
        } catch (Throwable e) {
            if (e instanceof Error) {
                node.metrics().handlerThrowable();
                log.warn("task={} kind={} owner={} attempt={}: handler threw {}", taskId(), kind(), owner, attempt(),
                        e.getClass().getName());
            }
            return failure(timedOut ? timedOutText(timeout) + ": " + describe(e) : describe(e), false);
        }
    }

    /** Half the timeout, within [1 s, 10 s]: long enough for a handler that does stop, short enough to matter. */
    static Duration abandonGrace(Duration timeout) {
        Duration half = timeout.dividedBy(2);
        return half.compareTo(MIN_ABANDON_GRACE) < 0 ? MIN_ABANDON_GRACE : half.compareTo(MAX_ABANDON_GRACE) > 0 ? MAX_ABANDON_GRACE : half;
    }

    private static String timedOutText(Duration timeout) {
        return "timed out after " + timeout.toMillis() + " ms";
    }

    /** On the timeouts thread: the handler was interrupted {@code grace} ago and has not returned. */
    private void abandon(Duration timeout, Duration grace) {
        if (settled.get() || !phase.compareAndSet(0, 2)) return;
        node.metrics().handlerThrowable();
        log.error("task={} kind={} owner={} attempt={} lease_token={}: handler ignored its interruption {} ms after its"
                + " timeout; attempt failed, worker thread {} abandoned and replaced", taskId(), kind(), owner, attempt(),
                leaseToken(), grace.toMillis(), held.worker == null ? "?" : held.worker.getName());
        try {
            settle(failure(timedOutText(timeout) + "; the handler ignored its interruption for " + grace.toMillis()
                    + " ms, its thread was abandoned", false));
        } finally {
            held.finish();
            node.workers().abandoned();
            freeSlot(System.nanoTime() - startNanos);
        }
    }

    /** Submits {@code outcome} (or drops the lease when it is lost), once: the first of return or abandonment wins. */
    private void settle(Outcome outcome) {
        if (outcome == null || !settled.compareAndSet(false, true)) return;
        if (held.lost()) {
            discard(held.lostBecause);
        } else {
            node.completer().submit(held, outcome);
        }
    }

    private void freeSlot(long handlerNanos) {
        if (slotFreed.compareAndSet(false, true)) onDone.accept(handlerNanos);
    }

    private void discard(String why) {
        log.info("task={} kind={} owner={} attempt={} lease_token={}: result discarded, lease lost ({})",
                held.task.id(), held.task.kind(), owner, held.task.attempt(), held.task.leaseToken(), why);
        node.completer().forget(held);
    }

    private Outcome success(Object result) {
        String json = toJson(result);
        if (StorableText.exceedsUtf8(json, node.maxResultBytes())) {
            // a named rule, not a database error: the result is refused before it is written
            return failure("result of " + StorableText.utf8Length(json) + " bytes exceeds TASK_MAX_RESULT_BYTES=" + node.maxResultBytes(), true);
        }
        return new Outcome.Success(held.task.id(), held.task.leaseToken(), json);
    }

    private Outcome.Failure failure(String error, boolean permanent) {
        return new Outcome.Failure(held.task.id(), held.task.leaseToken(), TaskStore.truncate(error), permanent,
                node.retry().delay(held.task.attempt()));
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
    public Optional<PreviousAttempt> previousAttempt() {
        if (previousAttempt == null) {
            previousAttempt = node.store().previousAttempt(taskId(), leaseToken())
                    .map(r -> PreviousAttempt.of(r, held.task.progressJson()));
        }
        return previousAttempt;
    }

    @Override
    public boolean heartbeat(Object progress, String message) {
        if (held.lost()) return false;
        try {
            boolean ok = node.store().heartbeat(owner, taskId(), leaseToken(), held.task.lease(),
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
            answer = node.store().extendLease(owner, taskId(), leaseToken(), time, reason, handler.maxLeaseExtensions());
        } catch (StoreException e) {
            log.warn("task={}: lease extension failed ({}); not granted", taskId(), e.getMessage());
            return false;
        }
        switch (answer) {
            case GRANTED -> node.metrics().leaseExtension(kind(), "granted");
            case REFUSED -> {
                node.metrics().leaseExtension(kind(), "refused");
                log.warn("task={} kind={} attempt={}: lease extension of {} refused, {} already granted to this attempt ({})",
                        taskId(), kind(), attempt(), time, handler.maxLeaseExtensions(), reason);
            }
            case LEASE_LOST -> HeldLeases.markLost(held, "extension refused: lease lost");
        }
        return answer == TaskStore.Extension.GRANTED;
    }

    @Override
    public boolean compensating() {
        return held.task.compensating();
    }

    @Override
    public boolean leaseLost() {
        return held.lost();
    }
}

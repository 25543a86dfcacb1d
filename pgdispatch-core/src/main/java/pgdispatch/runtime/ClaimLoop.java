package pgdispatch.runtime;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.LimitStore;
import pgdispatch.store.StoreException;
import pgdispatch.store.TaskStore;

/**
 * Claims due tasks in one statement per batch and hands them to the workers. It claims when a worker is
 * idle, or when a whole batch fits: besides the worker slots it keeps a local buffer of claimed tasks
 * (as Graphile Worker's local queue does), sized from how long handlers take against how long a claim
 * takes: {@code 2 x concurrency x claim time / handler time}, at most two batches of {@code claimBatch}.
 * Short tasks (a no-op: microseconds against milliseconds) get a full buffer, so one claim feeds the
 * workers for a whole batch instead of one statement per freed slot; tasks of a second or more get none,
 * so no task waits behind a busy worker while another node is idle. A buffered task is claimed and held
 * like a running one: its lease is renewed, a lost lease discards it before it starts, a graceful stop
 * releases it without charging the attempt (TaskExecution checks {@code draining}), a crash leaves it
 * to the reaper as it does a running task.
 *
 * <p>Claims again at once while claims come back full; after a short claim nothing more was due, so
 * only a wake-up (LISTEN/NOTIFY) or the poll interval starts the next one. While idle the poll backs off
 * to twice the interval, and to four times while LISTEN is up (inserts wake the loop then; the poll only
 * finds work that became due by time: scheduled runs, retries, requeues). Each idle poll costs two
 * statements, since the pool validates a connection idle for more than half a second: at the default
 * 1 s interval an idle node sends about 0.5 claim statements a second plus its maintenance. The limit keys
 * of this node's kinds and queues are read on a {@code :limits} notification before the next claim (and
 * once a minute, or after a short claim at most once per poll interval while LISTEN is down). After a claim whose outcome is unknown (the connection broke), it first takes back the rows
 * that claim may have given this node (seed 000: renew them, never leave them to expire).
 */
final class ClaimLoop {
    private static final Logger log = LoggerFactory.getLogger(ClaimLoop.class);
    private static final Logger transitions = LoggerFactory.getLogger("pgdispatch.transitions");
    static final int DEFAULT_CLAIM_BATCH = 500;
    /** Finished tasks whose outcome the completer has not written yet, beyond which the loop stops claiming. */
    static final int MAX_UNWRITTEN = 2 * Completer.MAX_BATCH;

    private final String owner;
    private final List<String> queues;
    private final Map<String, Duration> leaseByKind;
    private final Set<String> compensatingKinds;
    private final int maxRequeue;
    private final Duration pollInterval;
    private final int concurrency;
    private final int claimBatch;
    private final int maxPayloadBytes;
    private final TaskStore store;
    private final HeldLeases leases;
    private final DispatchMetrics metrics;
    /** Tasks handed to the workers and not yet finished by them: running plus buffered. */
    private final AtomicInteger outstanding = new AtomicInteger();
    private final Semaphore wakeups = new Semaphore(0);
    private final WorkerPool workers;
    private final Function<HeldLeases.Held, Runnable> execution;
    private final BooleanSupplier listening;
    private final LimitStore limits;
    /** The concurrency limits on this node's kinds and queues, as last read: the claim locks and counts them. */
    private volatile List<String> limitKeys = List.of();
    private long lastLimitsRead = System.nanoTime() - Long.MAX_VALUE / 2;
    /** Set by a {@code :limits} notification (V13_5), or when notifications may have been missed: read before the next claim. */
    private volatile boolean limitsChanged = true;
    /**
     * While LISTEN is up the limit keys are read only on a notification, and once per this as a safety net
     * for a lost one; while it is down, after a short claim at most once per poll interval (as before V13_5).
     */
    static final Duration LIMITS_SAFETY_INTERVAL = Duration.ofSeconds(60);
    /** Moving averages (nanoseconds) that size the buffer; written racily, an estimate is all they are. */
    private volatile double handlerNanos = Double.NaN;
    private volatile double claimNanos = Double.NaN;
    /** The last claim came back full: more is probably due, so a freed slot is worth a claim. */
    private volatile boolean more = true;
    private volatile boolean stopped;
    /** When the loop last completed a cycle (a claim, or finding nothing to claim): readiness reads it. */
    private volatile long lastCycleNanos = System.nanoTime();
    private Thread thread;
    private boolean claimOutcomeUnknown;
    private long lastTakeOverCheck = System.nanoTime() - Long.MAX_VALUE / 2;

    ClaimLoop(String owner, List<String> queues, Map<String, Duration> leaseByKind, Set<String> compensatingKinds,
              int maxRequeue, Duration pollInterval,
              int concurrency, int claimBatch, int maxPayloadBytes, TaskStore store, HeldLeases leases, DispatchMetrics metrics,
              WorkerPool workers, Function<HeldLeases.Held, Runnable> execution, BooleanSupplier listening,
              LimitStore limits) {
        this.owner = owner;
        this.queues = List.copyOf(queues);
        this.leaseByKind = Map.copyOf(leaseByKind);
        this.compensatingKinds = Set.copyOf(compensatingKinds);
        this.maxRequeue = maxRequeue;
        this.pollInterval = pollInterval;
        this.concurrency = concurrency;
        this.claimBatch = claimBatch;
        this.maxPayloadBytes = maxPayloadBytes;
        this.store = store;
        this.leases = leases;
        this.metrics = metrics;
        this.workers = workers;
        this.execution = execution;
        this.listening = listening;
        this.limits = limits;
    }

    void start() {
        lastCycleNanos = System.nanoTime();
        thread = Thread.ofPlatform().daemon().name("pgdispatch-claimer").start(this::loop);
    }

    /**
     * The concurrency limits changed (a {@code :limits} notification), or notifications may have been
     * missed (the LISTEN connection was re-opened): the next claim reads the limit keys first.
     */
    void limitsChanged() {
        limitsChanged = true;
        wake();
    }

    /** Something may be due: claim now rather than at the next poll. */
    void wake() {
        more = true;
        signal();
    }

    private void signal() {
        if (wakeups.availablePermits() == 0) wakeups.release();
    }

    /**
     * A worker finished a task (or skipped it) after {@code handlerNanos} on its thread: updates the
     * handler time that sizes the buffer, and wakes the claimer when that makes a claim worth it.
     */
    void slotFreed(long handlerNanos) {
        double h = this.handlerNanos;
        this.handlerNanos = Double.isNaN(h) ? handlerNanos : h + 0.05 * (handlerNanos - h);
        int out = outstanding.decrementAndGet();
        if (more && want(out) > 0) signal();
    }

    /** The completer wrote a batch: if that was holding claims back, claim again. */
    void written() {
        if (more && want(outstanding.get()) > 0) signal();
    }

    /** {@link System#nanoTime()} when the loop last completed a cycle; a stuck claim or a dead loop stops it. */
    long lastCycleNanos() {
        return lastCycleNanos;
    }

    /** Tasks claimed and not yet finished by a worker (running or buffered). */
    int outstanding() {
        return outstanding.get();
    }

    /**
     * Tasks to buffer beyond the worker slots: what the workers finish during about two claims, at most
     * two claim batches (one being worked off while the next claim runs).
     */
    int prefetch() {
        double h = handlerNanos, c = claimNanos;
        if (!(h > 0) || !(c > 0)) return 0; // nothing measured yet: no buffer
        return (int) Math.min(2.0 * claimBatch, 2.0 * concurrency * c / h);
    }

    /**
     * How many to claim with {@code out} outstanding: when a worker is idle, or when a whole batch (or
     * half the buffer, if smaller) fits, so a full buffer is refilled by full-size claims while the
     * workers still have a batch to work off.
     */
    int want(int out) {
        int prefetch = prefetch();
        int room = concurrency + prefetch - out;
        if (room <= 0) return 0;
        // back-pressure: a completer that falls behind holds every finished task's lease until it writes
        // it; claiming on would grow that set (and the renewal) without bound
        if (leases.size() - out >= MAX_UNWRITTEN) return 0;
        if (out < concurrency || room >= Math.max(1, Math.min(claimBatch, prefetch / 2))) return Math.min(room, claimBatch);
        return 0;
    }

    private void loop() {
        long idleWaitMs = pollInterval.toMillis();
        long errorBackoffMs = 100;
        while (!stopped) {
            try {
                if (claimOutcomeUnknown) {
                    reclaim();
                    claimOutcomeUnknown = false;
                }
                int want = want(outstanding.get());
                int got = 0;
                if (want > 0) {
                    // a notified change takes effect at this claim; the safety interval covers a lost notification
                    if (limitsChanged || System.nanoTime() - lastLimitsRead >= LIMITS_SAFETY_INTERVAL.toNanos()) readLimits();
                    got = claim(want);
                    more = got == want;
                    // a short claim without notifications (LISTEN down): nothing more due, or a limit held
                    // tasks back (one set since the last read admits nothing until it is locked): read the
                    // limits again, at most once per poll interval, and claim again at once when they changed
                    if (!more && !listening.getAsBoolean() && System.nanoTime() - lastLimitsRead >= pollInterval.toNanos()
                            && readLimits()) continue;
                }
                errorBackoffMs = 100;
                lastCycleNanos = System.nanoTime();
                if (want > 0 && got == want) continue; // more may be due: claim again at once when there is room
                if (got > 0 || want == 0) idleWaitMs = pollInterval.toMillis();
                else idleWaitMs = Math.min(idleWaitMs * 2, (listening.getAsBoolean() ? 4 : 2) * pollInterval.toMillis());
                if (wakeups.tryAcquire(idleWaitMs, TimeUnit.MILLISECONDS)) {
                    wakeups.drainPermits();
                }
            } catch (InterruptedException e) {
                return;
            } catch (StoreException e) {
                if (e.connectionLost()) claimOutcomeUnknown = true;
                log.warn("claimer: claim failed ({}); retrying in {} ms", e.getMessage(), errorBackoffMs);
                try {
                    if (wakeups.tryAcquire(errorBackoffMs, TimeUnit.MILLISECONDS)) wakeups.drainPermits();
                } catch (InterruptedException ie) {
                    return;
                }
                errorBackoffMs = Math.min(errorBackoffMs * 2, 5000);
            } catch (Throwable e) {
                // anything else (an Error included: one huge row must not end claiming while the node
                // heartbeats and looks ready): log, back off, go on. The claim's outcome is unknown.
                claimOutcomeUnknown = true;
                log.error("claimer: unexpected error; claiming goes on in {} ms", errorBackoffMs, e);
                try {
                    if (wakeups.tryAcquire(errorBackoffMs, TimeUnit.MILLISECONDS)) wakeups.drainPermits();
                } catch (InterruptedException ie) {
                    return;
                }
                errorBackoffMs = Math.min(errorBackoffMs * 2, 5000);
            }
        }
    }

    private int claim(int want) {
        var sample = metrics.startClaim();
        long t0 = System.nanoTime();
        List<ClaimedTask> claimed;
        try {
            // expired leases: looked for once per poll interval (a scan of the running rows), and by the reaper
            long now = System.nanoTime();
            boolean takeOver = now - lastTakeOverCheck >= pollInterval.toNanos();
            if (takeOver) lastTakeOverCheck = now;
            claimed = store.claimDue(new ClaimRequest(owner, queues, leaseByKind, want, maxRequeue, takeOver, maxPayloadBytes,
                    compensatingKinds, limitKeys));
        } finally {
            metrics.claimDone(sample);
        }
        long took = System.nanoTime() - t0;
        double c = claimNanos;
        claimNanos = Double.isNaN(c) ? took : c + 0.2 * (took - c);
        dispatch(claimed);
        return claimed.size();
    }

    /** Reads the limit keys; true when they changed. */
    private boolean readLimits() {
        limitsChanged = false; // before the read: a notification during it is read again
        lastLimitsRead = System.nanoTime();
        List<String> read;
        try {
            read = limits.keysFor(leaseByKind.keySet(), queues);
        } catch (RuntimeException e) {
            limitsChanged = true; // not read: the next claim tries again
            throw e;
        }
        if (read.equals(limitKeys)) return false;
        log.info("claimer: concurrency limits on this node's kinds and queues now {}", read.isEmpty() ? "none" : read);
        limitKeys = read;
        return true;
    }

    private void reclaim() {
        List<ClaimedTask> mine = store.reclaimOwned(owner, leases.all().stream().map(h -> h.task.id())
                .collect(java.util.stream.Collectors.toSet()), leaseByKind);
        if (mine.isEmpty()) return;
        log.info("claimer: took back {} tasks a claim gave this node before its connection broke", mine.size());
        // held (and so renewed) at once; each runs as soon as a worker is free
        dispatch(mine);
    }

    /** Holds the whole batch, then hands it to the workers at once ({@link WorkerPool#dispatch}). */
    private void dispatch(List<ClaimedTask> claimed) {
        countClaimed(claimed);
        metrics.inFlight(leases.size() + claimed.size());
        Runnable[] runs = new Runnable[claimed.size()];
        for (int i = 0; i < runs.length; i++) runs[i] = execution.apply(hold(claimed.get(i)));
        outstanding.addAndGet(runs.length);
        workers.dispatch(runs);
    }

    private HeldLeases.Held hold(ClaimedTask t) {
        HeldLeases.Held h = leases.add(t);
        if (transitions.isInfoEnabled()) {
            transitions.info("task={} kind={} owner={} attempt={} lease_token={} -> running{}", t.id(), t.kind(), owner,
                    t.attempt(), t.leaseToken(), t.tookOver() ? " (took over expired lease of " + t.previousOwner() + ")" : "");
        }
        return h;
    }

    /** One counter increment per run of tasks with the same queue and kind (a batch is mostly one run). */
    private void countClaimed(List<ClaimedTask> claimed) {
        int i = 0;
        while (i < claimed.size()) {
            ClaimedTask first = claimed.get(i);
            int j = i + 1;
            while (j < claimed.size() && claimed.get(j).kind().equals(first.kind())
                    && claimed.get(j).queue().equals(first.queue())) j++;
            metrics.claimed(first.queue(), first.kind(), j - i);
            i = j;
        }
    }

    /** Stops claiming; returns once the loop has exited. */
    void stop() {
        stopped = true;
        if (thread != null) {
            thread.interrupt();
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}

package pgdispatch.runtime;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.StoreException;
import pgdispatch.store.TaskStore;

/**
 * Claims as many due tasks as there are free worker slots, in one statement, and hands them to the
 * workers. Claims again at once while claims come back full; otherwise sleeps until a wake-up
 * (LISTEN/NOTIFY, a freed slot) or the poll interval, backing off to twice that while idle.
 * After a claim whose outcome is unknown (the connection broke), it first takes back the rows that claim
 * may have given this node (seed 000: renew them, never leave them to expire).
 */
final class ClaimLoop {
    private static final Logger log = LoggerFactory.getLogger(ClaimLoop.class);
    private static final Logger transitions = LoggerFactory.getLogger("pgdispatch.transitions");
    static final int DEFAULT_CLAIM_BATCH = 500;

    private final String owner;
    private final List<String> queues;
    private final Map<String, Duration> leaseByKind;
    private final int maxRequeue;
    private final Duration pollInterval;
    private final TaskStore store;
    private final HeldLeases leases;
    private final DispatchMetrics metrics;
    private final Semaphore slots;
    private final Semaphore wakeups = new Semaphore(0);
    private final ExecutorService workers;
    private final Function<HeldLeases.Held, Runnable> execution;
    private volatile boolean stopped;
    private Thread thread;
    private boolean claimOutcomeUnknown;

    ClaimLoop(String owner, List<String> queues, Map<String, Duration> leaseByKind, int maxRequeue, Duration pollInterval,
              int concurrency, TaskStore store, HeldLeases leases, DispatchMetrics metrics, ExecutorService workers,
              Function<HeldLeases.Held, Runnable> execution) {
        this.owner = owner;
        this.queues = List.copyOf(queues);
        this.leaseByKind = Map.copyOf(leaseByKind);
        this.maxRequeue = maxRequeue;
        this.pollInterval = pollInterval;
        this.store = store;
        this.leases = leases;
        this.metrics = metrics;
        this.slots = new Semaphore(concurrency);
        this.workers = workers;
        this.execution = execution;
    }

    void start() {
        thread = Thread.ofPlatform().daemon().name("pgdispatch-claimer").start(this::loop);
    }

    /** Something may be due: claim now rather than at the next poll. */
    void wake() {
        if (wakeups.availablePermits() == 0) wakeups.release();
    }

    /** A worker finished: its slot is free. */
    void slotFreed() {
        slots.release();
        wake();
    }

    int busySlots(int concurrency) {
        return concurrency - slots.availablePermits();
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
                int free = slots.availablePermits();
                int got = 0;
                if (free > 0) {
                    got = claim(free);
                }
                errorBackoffMs = 100;
                if (free > 0 && got == free) continue; // more may be due: claim again at once
                if (got > 0) idleWaitMs = pollInterval.toMillis();
                else idleWaitMs = Math.min(idleWaitMs * 2, 2 * pollInterval.toMillis());
                if (wakeups.tryAcquire(free == 0 ? Long.MAX_VALUE : idleWaitMs, TimeUnit.MILLISECONDS)) {
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
            } catch (RuntimeException e) {
                log.error("claimer: unexpected error, claiming goes on", e);
            }
        }
    }

    private int claim(int free) {
        var sample = metrics.startClaim();
        List<ClaimedTask> claimed;
        try {
            claimed = store.claimDue(new ClaimRequest(owner, queues, leaseByKind, free, maxRequeue));
        } finally {
            metrics.claimDone(sample);
        }
        dispatch(claimed);
        return claimed.size();
    }

    private void reclaim() throws InterruptedException {
        List<ClaimedTask> mine = store.reclaimOwned(owner, leases.all().stream().map(h -> h.task.id())
                .collect(java.util.stream.Collectors.toSet()), leaseByKind);
        if (mine.isEmpty()) return;
        log.info("claimer: took back {} tasks a claim gave this node before its connection broke", mine.size());
        // held (and so renewed) at once; each runs as soon as a slot is free
        List<HeldLeases.Held> held = mine.stream().map(this::hold).toList();
        for (HeldLeases.Held h : held) {
            slots.acquire();
            workers.execute(execution.apply(h));
        }
    }

    private void dispatch(List<ClaimedTask> claimed) {
        for (ClaimedTask t : claimed) {
            if (!slots.tryAcquire()) {
                throw new IllegalStateException("claimed more tasks than free slots");
            }
            workers.execute(execution.apply(hold(t)));
        }
    }

    private HeldLeases.Held hold(ClaimedTask t) {
        HeldLeases.Held h = leases.add(t);
        metrics.claimed(t.queue(), t.kind());
        metrics.inFlight(leases.size());
        if (transitions.isInfoEnabled()) {
            transitions.info("task={} kind={} owner={} attempt={} lease_token={} -> running{}", t.id(), t.kind(), owner,
                    t.attempt(), t.leaseToken(), t.tookOver() ? " (took over expired lease of " + t.previousOwner() + ")" : "");
        }
        return h;
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

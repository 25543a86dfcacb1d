package pgdispatch.runtime;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.HeldLease;

/**
 * The leases this node holds, from claim until the completer's write commits (so a finished task's lease
 * keeps being renewed until its outcome is durable). The renewer presents them all in one statement;
 * a lease the renewal reports lost is marked here and its handler interrupted.
 */
final class HeldLeases {
    /** One held task: its claim, the worker running it, and whether the lease is known lost. */
    static final class Held {
        final ClaimedTask task;
        volatile Thread worker;
        volatile String lostBecause;
        volatile boolean finished;
        /** The back-off should the renewal judge this attempt stuck and fail it (set before the handler starts). */
        volatile java.time.Duration retryDelay = java.time.Duration.ZERO;

        Held(ClaimedTask task) {
            this.task = task;
        }

        boolean lost() {
            return lostBecause != null;
        }

        /**
         * Interrupts the worker if it still runs this task. Checking {@code finished} and interrupting
         * under the lock {@link #finish()} takes closes the race where the worker finished between the
         * check and the interrupt and the interrupt hit its next task (issue 11 item 3a).
         */
        synchronized boolean interruptIfRunning() {
            Thread w = worker;
            if (w == null || finished) return false;
            w.interrupt();
            return true;
        }

        /**
         * The worker is done with this task: no interrupt for it can arrive after this returns. The
         * worker then clears its interrupt flag of any that arrived before.
         */
        synchronized void finish() {
            finished = true;
        }

        /**
         * On the worker thread, when the handler has returned: {@link #finish()}, then clear an interrupt
         * for this task that arrived before it, so that none leaks into the next task on this thread.
         */
        void finishOnWorker() {
            finish();
            Thread.interrupted();
        }

        HeldLease lease() {
            // finished and not lost: the outcome is with the completer (a lost one is forgotten, not presented)
            return new HeldLease(task.id(), task.leaseToken(), task.lease(), finished, retryDelay, task.kind());
        }
    }

    /**
     * Held while a statement writes several of this node's held rows (renewal, completion batch, release
     * at stop), so that one runs at a time: two such statements locking the same rows in different
     * orders deadlock, and a renewal running beside a completion would find the just-completed rows no
     * longer running and record them as lost leases. The completer removes what it wrote before letting
     * go, and the renewer reads the leases to present after taking it. Fair: a completer writing batch
     * after batch at full load must not starve the renewal tick (its node heartbeat rides on it).
     */
    final ReentrantLock writes = new ReentrantLock(true);

    private final Map<Long, Held> held;

    /** Sized for a full claim-ahead buffer, so the hot path does not grow the table batch after batch. */
    HeldLeases() {
        this(1024);
    }

    /**
     * With room for {@code capacity} leases before the table grows: small in the model-checking test, whose
     * checker takes a walk over more than a few dozen empty bins ({@link #renewable}) for a livelock.
     */
    HeldLeases(int capacity) {
        this.held = new ConcurrentHashMap<>(capacity);
    }

    Held add(ClaimedTask task) {
        Held h = new Held(task);
        Held before = held.put(task.id(), h);
        if (before != null && before.task.leaseToken() != task.leaseToken()) {
            // this node re-took a task it already ran (reclaim): the older attempt is superseded
            markLost(before, "superseded by lease token " + task.leaseToken());
        }
        return h;
    }

    /** Removes {@code h} if it is still the attempt held for its task; true if it was. */
    boolean remove(Held h) {
        return held.remove(h.task.id(), h);
    }

    Held get(long id) {
        return held.get(id);
    }

    /** Leases to renew: every held task not known lost. */
    List<HeldLease> renewable() {
        List<HeldLease> out = new ArrayList<>(held.size());
        for (Held h : held.values()) {
            if (!h.lost()) out.add(h.lease());
        }
        return out;
    }

    Collection<Held> all() {
        return held.values();
    }

    int size() {
        return held.size();
    }

    /** Marks the lease lost and interrupts its handler, if one is running. */
    void markLost(long id, String why) {
        Held h = held.get(id);
        if (h != null) markLost(h, why);
    }

    static void markLost(Held h, String why) {
        if (h.lostBecause != null) return;
        h.lostBecause = why;
        h.interruptIfRunning();
    }
}

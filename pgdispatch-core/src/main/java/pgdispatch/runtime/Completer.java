package pgdispatch.runtime;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Outcome;
import pgdispatch.store.StoreException;
import pgdispatch.store.TaskStatus;
import pgdispatch.store.TaskStore;

/**
 * Writes attempt outcomes in batches: whatever finished while the previous batch was being written goes
 * in the next statement, so at high load many tasks share one commit while a lone task is written at
 * once. A task leaves {@link HeldLeases} only when its outcome is committed (or refused), so its lease
 * is renewed until then. A write that lost its connection is retried with back-off; a batch the
 * database refuses is split so that one unstorable outcome never holds up the rest (issue 11).
 */
final class Completer {
    private static final Logger log = LoggerFactory.getLogger(Completer.class);
    private static final Logger transitions = LoggerFactory.getLogger("pgdispatch.transitions");
    static final int MAX_BATCH = 1000;

    /**
     * Where a batch of outcomes is written: {@link TaskStore#writeOutcomes} (one statement, fenced by owner
     * and token), answering the outcomes accepted. A seam so that the completer's thread interplay can be
     * model-checked with an in-memory writer (CompleterHeldLeasesLincheckTest).
     */
    @FunctionalInterface
    interface Writer {
        List<TaskStore.Accepted> writeOutcomes(String owner, List<? extends Outcome> outcomes);
    }

    /** An outcome and when it was submitted (readiness: the oldest unwritten one's age). */
    private record Pending(HeldLeases.Held held, Outcome outcome, long submittedNanos) {}

    private final String owner;
    private final Writer writer;
    private final HeldLeases leases;
    private final DispatchMetrics metrics;
    private final Runnable onWritten;
    private final BlockingQueue<Pending> queue = new LinkedBlockingQueue<>();
    private final Object idle = new Object();
    private volatile boolean stopping;
    private volatile boolean halted;
    private Thread thread;
    /** Outcomes submitted and not yet written (or refused): what awaitFlushed waits for. */
    private final java.util.concurrent.atomic.AtomicInteger unwritten = new java.util.concurrent.atomic.AtomicInteger();
    /** Submission time of the oldest outcome of the batch in hand; 0 when none is in hand. */
    private volatile long batchSince;

    /** {@code onWritten}: after each batch is written (the claim loop may claim again). */
    Completer(String owner, Writer writer, HeldLeases leases, DispatchMetrics metrics, Runnable onWritten) {
        this.owner = owner;
        this.writer = writer;
        this.leases = leases;
        this.metrics = metrics;
        this.onWritten = onWritten;
    }

    void start() {
        thread = Thread.ofPlatform().daemon().name("pgdispatch-completer").start(this::loop);
    }

    void submit(HeldLeases.Held held, Outcome outcome) {
        // counted before it is queued and uncounted only after its batch is written: awaitFlushed never
        // sees 0 while an outcome sits between the queue and the batch (issue 11 item 3b)
        unwritten.incrementAndGet();
        queue.add(new Pending(held, outcome, System.nanoTime()));
    }

    /** A discarded attempt: nothing to write, the lease is simply no longer held. */
    void forget(HeldLeases.Held held) {
        leases.remove(held);
        metrics.inFlight(leases.size());
    }

    /** The batch in hand; only the completer's thread touches it. A failed write leaves the rest in it. */
    private final List<Pending> batch = new ArrayList<>();
    /** Outcomes the batch in hand started with: write() empties it as it writes them. */
    private int formed;

    private void loop() {
        long backoffMs = 100;
        while (!halted) {
            try {
                if (!writeNextBatch(200)) {
                    if (stopping) return;
                    continue;
                }
                backoffMs = 100;
            } catch (InterruptedException e) {
                if (batch.isEmpty() && queue.isEmpty()) return;
                // keep going until the queue is written; stop() waits for it
            } catch (Throwable e) {
                // a lost connection (the only failure write() lets through on purpose: the same batch is
                // retried, its outcome unknown), or something unforeseen: the loop must survive it
                if (e instanceof StoreException se && se.connectionLost()) {
                    log.warn("completer: writing {} outcomes failed, connection lost ({}); retrying in {} ms",
                            batch.size(), e.getMessage(), backoffMs);
                } else {
                    log.error("completer: writing {} outcomes failed; retrying in {} ms", batch.size(), backoffMs, e);
                }
                try {
                    Thread.sleep(backoffMs); // back-off between retries of a failed write, not synchronisation
                } catch (InterruptedException ie) {
                    if (stopping && Thread.currentThread().isInterrupted()) return;
                }
                backoffMs = Math.min(backoffMs * 2, 5000);
            }
        }
    }

    /**
     * One turn of the completer's loop, on its thread: with no batch in hand, waits up to {@code pollMs}
     * for an outcome and takes it with whatever else is queued; then writes the batch in hand. False when
     * nothing came. A write that fails leaves what it did not write in hand and throws (the loop retries).
     * The model-checking test calls it from a thread of its own (HeldLeasesLincheckTest).
     */
    boolean writeNextBatch(long pollMs) throws InterruptedException {
        if (batch.isEmpty()) {
            Pending first = queue.poll(pollMs, TimeUnit.MILLISECONDS);
            if (first == null) return false;
            batch.add(first);
            queue.drainTo(batch, MAX_BATCH - 1);
            formed = batch.size();
            synchronized (idle) {
                batchSince = first.submittedNanos;
            }
        }
        write(batch);
        unwritten.addAndGet(-formed); // written, replaced or dropped: none is left unwritten
        formed = 0;
        batch.clear();
        synchronized (idle) {
            batchSince = 0;
            idle.notifyAll();
        }
        return true;
    }

    /**
     * Writes {@code batch}, removing from it what is written, so that a retry after a lost connection
     * writes only the rest. A batch the database refuses for any other reason is split in halves,
     * so one bad outcome (a result or error text PostgreSQL will not store) cannot hold up the others;
     * that outcome alone is then written as a permanent failure saying why ({@link #refused}).
     */
    private void write(List<Pending> batch) {
        try {
            writeOnce(batch);
            batch.clear();
        } catch (StoreException e) {
            if (e.connectionLost()) throw e;
            refused(batch, e);
        } catch (RuntimeException e) {
            refused(batch, e);
        }
    }

    private void refused(List<Pending> batch, RuntimeException e) {
        if (batch.size() > 1) {
            write(batch.subList(0, batch.size() / 2)); // a sublist clears itself from the batch as it is written
            write(batch);
            return;
        }
        Pending p = batch.get(0);
        var t = p.held.task;
        String why = e instanceof StoreException se ? "SQLSTATE " + se.sqlState() + ": " + e.getMessage() : String.valueOf(e);
        String what = p.outcome instanceof Outcome.Success ? "result" : "error text";
        String note = "the handler's " + what + " was refused by the database (" + why + "); written as a permanent failure instead";
        log.error("task={} kind={} owner={} attempt={} lease_token={}: {}", t.id(), t.kind(), owner, t.attempt(),
                t.leaseToken(), note);
        String error = "outcome not storable: " + why;
        Pending replacement = new Pending(p.held, new Outcome.Failure(t.id(), t.leaseToken(), TaskStore.truncate(error),
                true, Duration.ZERO, note), p.submittedNanos);
        try {
            writeOnce(List.of(replacement));
            metrics.outcomesReplaced(1);
        } catch (StoreException e2) {
            if (e2.connectionLost()) throw e2;
            // nothing of this outcome is storable: stop holding the lease; it expires and the reaper
            // requeues the task (or quarantines it once its requeue budget is spent)
            log.error("task={} owner={} lease_token={}: even the replacement failure was refused ({}); lease dropped",
                    t.id(), owner, t.leaseToken(), e2.getMessage());
            forget(p.held);
        }
        batch.clear();
    }

    private void writeOnce(List<Pending> batch) {
        List<Outcome> outcomes = new ArrayList<>(batch.size());
        for (Pending p : batch) outcomes.add(p.outcome);
        Map<Key, TaskStatus> status = new HashMap<>(2 * batch.size());
        leases.writes.lock();
        try {
            for (TaskStore.Accepted a : writer.writeOutcomes(owner, outcomes)) {
                status.put(new Key(a.id(), a.leaseToken()), a.status());
            }
            for (Pending p : batch) leases.remove(p.held);
        } finally {
            leases.writes.unlock();
        }
        int refused = 0;
        Run run = new Run();
        for (Pending p : batch) {
            var t = p.held.task;
            TaskStatus st = status.get(new Key(t.id(), t.leaseToken()));
            if (st == null) {
                refused++;
                log.warn("task={} kind={} owner={} attempt={} lease_token={}: completion refused, the lease was lost",
                        t.id(), t.kind(), owner, t.attempt(), t.leaseToken());
                continue;
            }
            run.add(t.queue(), t.kind(), st);
            if (transitions.isInfoEnabled()) {
                String detail = p.outcome instanceof Outcome.Failure f ? " error=" + f.error() : "";
                transitions.info("task={} kind={} owner={} attempt={} lease_token={} -> {}{}", t.id(), t.kind(), owner,
                        t.attempt(), t.leaseToken(), st.sql(), detail);
            }
        }
        run.flush();
        metrics.completionsRefused(refused);
        metrics.inFlight(leases.size());
        onWritten.run();
    }

    /** An outcome's identity: the task and the lease token it was produced under. */
    private record Key(long id, long token) {}

    /** Counts consecutive outcomes of one queue, kind and status with one counter increment. */
    private final class Run {
        private String queue;
        private String kind;
        private TaskStatus status;
        private int n;

        void add(String q, String k, TaskStatus st) {
            if (n > 0 && (st != status || !k.equals(kind) || !q.equals(queue))) flush();
            queue = q;
            kind = k;
            status = st;
            n++;
        }

        void flush() {
            if (n == 0) return;
            switch (status) {
                case SUCCEEDED -> metrics.succeeded(queue, kind, n);
                case PENDING -> metrics.retried(queue, kind, n);
                case COMPENSATED -> { } // the task was counted failed when its attempt failed
                default -> metrics.failed(queue, kind, n);
            }
            n = 0;
        }
    }

    /**
     * {@link System#nanoTime()} when the oldest outcome not yet written was submitted (in hand, else the
     * first queued), or 0 when every outcome is written.
     */
    long oldestUnwrittenNanos() {
        long inHand = batchSince;
        if (inHand != 0) return inHand;
        Pending head = queue.peek();
        return head == null ? 0 : head.submittedNanos;
    }

    /** Outcomes submitted and not yet written. */
    int unwritten() {
        return unwritten.get();
    }

    /** Returns once every submitted outcome is written (or {@code timeoutMs} passed). */
    boolean awaitFlushed(long timeoutMs) throws InterruptedException {
        long until = System.currentTimeMillis() + timeoutMs;
        synchronized (idle) {
            while (unwritten.get() > 0 && !halted) {
                long left = until - System.currentTimeMillis();
                if (left <= 0) return false;
                idle.wait(Math.min(left, 50));
            }
        }
        return true;
    }

    /** Writes what is queued, then stops the thread. */
    void stop(long timeoutMs) {
        try {
            awaitFlushed(timeoutMs);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        stopping = true;
        if (thread != null) {
            try {
                thread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Stops at once, writing nothing more (a crash, for tests and the chaos run). */
    void halt() {
        halted = true;
        stopping = true;
        queue.clear();
        if (thread != null) thread.interrupt();
    }
}

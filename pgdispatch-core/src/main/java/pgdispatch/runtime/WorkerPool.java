package pgdispatch.runtime;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker threads: {@code TASK_CONCURRENCY} of them, plus one for each thread a handler holds after
 * its attempt was abandoned (it ignored the interrupt of its timeout): Java cannot stop such a thread,
 * so the slot is given back and a replacement started, and the pool shrinks again when the stuck
 * handler finally returns. {@link #abandonedNow()} shows how many are stuck.
 *
 * <p>Claimed tasks reach the threads through {@link #dispatch}: a lock-free queue that each busy thread
 * keeps taking from until it is empty, and threads woken one at a time while tasks wait ({@link #wakeOne}).
 * A plain {@code execute} per task woke every idle thread for each batch through the pool's blocking
 * queue, whose lock they then handed to each other: parks, unparks and context switches that were
 * 2 µs of CPU per task, most of the workers' CPU in a no-op drain.
 */
final class WorkerPool extends ThreadPoolExecutor {
    private static final Logger log = LoggerFactory.getLogger(WorkerPool.class);
    private final int concurrency;
    private int abandoned;
    /** Tasks dispatched and not yet taken by a thread. */
    private final ConcurrentLinkedQueue<Runnable> ready = new ConcurrentLinkedQueue<>();
    /** Threads running {@link #drain}: at most the pool's maximum size. */
    private final AtomicInteger drainers = new AtomicInteger();
    /** Drainers started that have not taken their first task yet. */
    private final AtomicInteger waking = new AtomicInteger();

    WorkerPool(int concurrency) {
        super(concurrency, concurrency, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
                Thread.ofPlatform().daemon().name("pgdispatch-worker-", 1).factory());
        this.concurrency = concurrency;
    }

    /** Runs {@code tasks} on the pool's threads, in order of taking, at most the pool's size at a time. */
    void dispatch(Runnable[] tasks) {
        for (Runnable t : tasks) ready.add(t);
        wakeOne();
    }

    /**
     * Starts one more drainer, unless one is already on its way (started, no task taken yet: it wakes the
     * next when it finds more waiting) or the pool is full. Threads join one by one while work is left,
     * as Go's scheduler wakes one spinning thread at a time: a batch of fast tasks is worked off by the
     * few threads that woke meanwhile (each wake is a context switch), slow ones still reach every thread.
     */
    private void wakeOne() {
        if (waking.get() > 0 || !takeDrainerSlot()) return;
        waking.incrementAndGet();
        try {
            execute(() -> drain(true));
        } catch (RejectedExecutionException e) { // shut down: what is left is released by the stop
            waking.decrementAndGet();
            drainers.decrementAndGet();
        }
    }

    private boolean takeDrainerSlot() {
        while (true) {
            int d = drainers.get();
            if (d >= getMaximumPoolSize()) return false;
            if (drainers.compareAndSet(d, d + 1)) return true;
        }
    }

    /** On a pool thread: runs ready tasks until none is left, or the pool shrank below the drainers. */
    private void drain(boolean woken) {
        while (true) {
            Runnable t = ready.poll();
            if (woken) {
                waking.decrementAndGet();
                woken = false;
            }
            if (t == null) {
                drainers.decrementAndGet();
                // a dispatch that found every drainer busy just before the decrement started none: take its tasks
                if (ready.isEmpty() || !takeDrainerSlot()) return;
                continue;
            }
            if (!ready.isEmpty()) wakeOne(); // more waiting than this thread is about to take
            try {
                t.run();
            } catch (Throwable e) {
                log.error("worker: a task escaped its own error handling; the worker goes on", e);
            }
            if (drainers.get() > getMaximumPoolSize()) { // an abandoned handler returned: the pool shrank
                drainers.decrementAndGet();
                return;
            }
        }
    }

    /** A handler's thread is stuck: one more thread, so the node keeps its full concurrency. */
    void abandoned() {
        synchronized (this) {
            abandoned++;
            setMaximumPoolSize(concurrency + abandoned); // the maximum first: the core may not exceed it
            setCorePoolSize(concurrency + abandoned);
        }
        if (!ready.isEmpty()) wakeOne(); // tasks waiting while every other thread is busy
    }

    /** An abandoned handler returned: its thread rejoins the pool, which shrinks back by one. */
    synchronized void returned() {
        abandoned--;
        setCorePoolSize(concurrency + abandoned);
        setMaximumPoolSize(concurrency + abandoned);
    }

    synchronized int abandonedNow() {
        return abandoned;
    }
}

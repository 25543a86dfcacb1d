package pgdispatch.runtime;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The worker threads: {@code TASK_CONCURRENCY} of them, plus one for each thread a handler holds after
 * its attempt was abandoned (it ignored the interrupt of its timeout): Java cannot stop such a thread,
 * so the slot is given back and a replacement started, and the pool shrinks again when the stuck
 * handler finally returns. {@link #abandonedNow()} shows how many are stuck.
 */
final class WorkerPool extends ThreadPoolExecutor {
    private final int concurrency;
    private int abandoned;

    WorkerPool(int concurrency) {
        super(concurrency, concurrency, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
                Thread.ofPlatform().daemon().name("pgdispatch-worker-", 1).factory());
        this.concurrency = concurrency;
    }

    /** A handler's thread is stuck: one more thread, so the node keeps its full concurrency. */
    synchronized void abandoned() {
        abandoned++;
        setMaximumPoolSize(concurrency + abandoned); // the maximum first: the core may not exceed it
        setCorePoolSize(concurrency + abandoned);
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

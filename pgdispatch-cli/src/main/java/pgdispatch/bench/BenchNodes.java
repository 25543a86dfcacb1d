package pgdispatch.bench;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;

/**
 * In-process dispatcher nodes on the scratch database, each with its own pool (as separate processes
 * would have), and progress read from their meters, so that waiting adds no statement to what is measured.
 */
final class BenchNodes implements AutoCloseable {
    private final List<Dispatcher> nodes = new ArrayList<>();

    /** The configuration of node {@code nodeId}: {@code env} HTTP off, pointed at the scratch database. */
    static DispatcherConfig config(Map<String, String> env, DatabaseUrl url, String nodeId, int concurrency,
                                   Map<String, String> overrides) {
        Map<String, String> m = new HashMap<>(env);
        m.put("DISPATCHER_NODE_ID", nodeId);
        m.put("TASK_QUEUES", "default");
        m.put("TASK_CONCURRENCY", Integer.toString(concurrency));
        m.put("PGDISPATCH_HTTP_PORT", "off");
        m.putAll(overrides);
        return DispatcherConfig.fromEnv(m).withDatabaseUrl(url);
    }

    /** Starts {@code k} nodes named {@code prefix-1..k}; each returns once it is claiming. */
    static BenchNodes start(Map<String, String> env, DatabaseUrl url, String prefix, int k, int concurrency, int claimBatch,
                            Map<String, String> overrides) throws InterruptedException {
        BenchNodes b = new BenchNodes();
        try {
            for (int i = 1; i <= k; i++) b.add(config(env, url, prefix + "-" + i, concurrency, overrides), claimBatch);
        } catch (RuntimeException | InterruptedException e) {
            b.close();
            throw e;
        }
        return b;
    }

    Dispatcher add(DispatcherConfig cfg, int claimBatch) throws InterruptedException {
        Dispatcher d = Dispatcher.builder(cfg).meterRegistry(new SimpleMeterRegistry()).claimBatch(claimBatch).build();
        nodes.add(d);
        d.start();
        return d;
    }

    List<Dispatcher> nodes() {
        return nodes;
    }

    /** Attempts finished (succeeded, retried or failed) and written, over every node. */
    long finished() {
        long n = 0;
        for (Dispatcher d : nodes) {
            for (String name : List.of("pgdispatch.tasks.succeeded", "pgdispatch.tasks.failed", "pgdispatch.tasks.retried")) {
                for (Counter c : d.metrics().registry().find(name).counters()) n += (long) c.count();
            }
        }
        return n;
    }

    /** Waits until {@code n} attempts are written, or fails after {@code timeout}. */
    void awaitFinished(long n, Duration timeout) throws InterruptedException {
        long until = System.nanoTime() + timeout.toNanos();
        while (finished() < n) {
            if (System.nanoTime() > until) {
                throw new IllegalStateException("only " + finished() + " of " + n + " tasks finished within " + timeout.toSeconds() + " s");
            }
            Thread.sleep(2); // reading in-process meters; the nodes signal nothing else
        }
    }

    /** Graceful stop of every node (their pools close, so their server counters are flushed). */
    @Override
    public void close() {
        for (Dispatcher d : nodes) d.stop();
    }
}

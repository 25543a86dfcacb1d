package pgdispatch.maintenance;

import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.TaskStore;

/**
 * Retention: deletes succeeded, failed and cancelled tasks (and their events) finished longer than
 * {@code TASK_RETENTION_S} ago, in small batches so no long transaction holds locks or bloats the
 * table. Quarantined tasks stay until an operator acts.
 */
public final class Pruner {
    private static final Logger log = LoggerFactory.getLogger(Pruner.class);

    public static final Duration DEFAULT_INTERVAL = Duration.ofMinutes(5);
    public static final int DEFAULT_BATCH = 1000;
    public static final int MAX_BATCHES_PER_RUN = 100;

    /** Settings; the compact constructor rejects impossible values. */
    public record Config(Duration interval, Duration retention, int batch) {
        public Config {
            if (interval.isZero() || interval.isNegative()) throw new IllegalArgumentException("Pruner.Config.interval must be > 0, got " + interval);
            if (retention.isZero() || retention.isNegative()) throw new IllegalArgumentException("Pruner.Config.retention must be > 0, got " + retention);
            if (batch < 1) throw new IllegalArgumentException("Pruner.Config.batch must be > 0, got " + batch);
        }
    }

    public record Result(int deleted, int batches) {}

    private final Config config;
    private final TaskStore store;
    private final DispatchMetrics metrics;
    private final PeriodicService service;

    public Pruner(Config config, TaskStore store, DispatchMetrics metrics) {
        this.config = config;
        this.store = store;
        this.metrics = metrics;
        this.service = new PeriodicService("pruner", config.interval(), this::runOnce);
    }

    public Result runOnce() {
        int deleted = 0, batches = 0;
        while (batches < MAX_BATCHES_PER_RUN) {
            int n = store.pruneFinished(config.retention(), config.batch());
            batches++;
            deleted += n;
            if (n < config.batch()) break;
        }
        metrics.pruned(deleted);
        if (deleted > 0) log.info("pruner: deleted={} batches={}", deleted, batches);
        return new Result(deleted, batches);
    }

    public void start() {
        service.start();
    }

    public void stop() {
        service.stop();
    }
}

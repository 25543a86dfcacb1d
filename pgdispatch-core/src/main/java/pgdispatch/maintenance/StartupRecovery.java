package pgdispatch.maintenance;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.TaskStore;

/**
 * At start, before the first claim, puts back what this node id's previous incarnation left RUNNING
 * (it crashed or was killed): requeued within the requeue budget, else quarantined. No loop: the
 * Dispatcher calls {@link #runOnce()} once.
 */
public final class StartupRecovery {
    private static final Logger log = LoggerFactory.getLogger(StartupRecovery.class);

    public static final int DEFAULT_BATCH = 500;

    /** Settings; the compact constructor rejects impossible values. */
    public record Config(String nodeId, int maxRequeue, int batch) {
        public Config {
            if (nodeId == null || nodeId.isBlank()) throw new IllegalArgumentException("StartupRecovery.Config.nodeId must be set");
            if (maxRequeue < 0) throw new IllegalArgumentException("StartupRecovery.Config.maxRequeue must be >= 0, got " + maxRequeue);
            if (batch < 1) throw new IllegalArgumentException("StartupRecovery.Config.batch must be > 0, got " + batch);
        }
    }

    public record Result(int recovered, int quarantined, int batches) {}

    private final Config config;
    private final TaskStore store;
    private final DispatchMetrics metrics;

    public StartupRecovery(Config config, TaskStore store, DispatchMetrics metrics) {
        this.config = config;
        this.store = store;
        this.metrics = metrics;
    }

    public Result runOnce() {
        int recovered = 0, quarantined = 0, batches = 0;
        while (true) {
            int[] n = store.recoverOwnedBy(config.nodeId(), config.maxRequeue(), config.batch());
            batches++;
            recovered += n[0];
            quarantined += n[1];
            if (n[0] + n[1] < config.batch()) break;
        }
        metrics.startupRecovered(recovered);
        metrics.quarantined(quarantined);
        if (recovered + quarantined > 0) {
            log.info("startup-recovery: node={} recovered={} quarantined={} (left running by its previous incarnation)",
                    config.nodeId(), recovered, quarantined);
        }
        return new Result(recovered, quarantined, batches);
    }
}

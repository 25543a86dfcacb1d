package pgdispatch.maintenance;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.StaleTask;
import pgdispatch.store.TaskStore;

/**
 * Puts stale RUNNING tasks back: lease expired, no heartbeat for {@code stale}, or owner node silent for
 * {@code nodeTimeout}. Requeued while their requeue budget lasts, else quarantined with the reason. Runs
 * on every node, one sweep at a time cluster-wide (advisory lock). The service and the {@code reap}
 * command share {@link #runOnce()} and {@link #plan()}.
 */
public final class Reaper {
    private static final Logger log = LoggerFactory.getLogger(Reaper.class);

    public static final int DEFAULT_BATCH = 200;

    /**
     * How often a node sweeps: a sixth of the renewal interval, at least 1 s (5 s at defaults). A dead
     * node's tasks are back within TASK_NODE_TIMEOUT_S plus this: 70 + 5 = 75 s at defaults. Each sweep is
     * one short statement over the running rows; concurrent nodes skip while one holds the advisory lock.
     */
    public static Duration intervalFor(Duration renewInterval) {
        Duration sixth = renewInterval.dividedBy(6);
        return sixth.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : sixth;
    }
    /** A sweep stops after this many batches even if every one came back full; the next sweep goes on. */
    public static final int MAX_BATCHES_PER_RUN = 50;

    /**
     * Settings; the compact constructor rejects impossible values. {@code node}: the node this reaper runs
     * in ("" for none, as in the {@code reap} command), whose own rows it leaves alone until that node's
     * renewal is within {@code ownFresh} (issue 11 item 5).
     */
    public record Config(Duration interval, Duration stale, Duration nodeTimeout, int maxRequeue, int batch, String node,
                         Duration ownFresh) {
        public Config(Duration interval, Duration stale, Duration nodeTimeout, int maxRequeue, int batch) {
            this(interval, stale, nodeTimeout, maxRequeue, batch, "", Duration.ZERO);
        }

        public Config {
            if (interval.isZero() || interval.isNegative()) throw new IllegalArgumentException("Reaper.Config.interval must be > 0, got " + interval);
            if (stale.isZero() || stale.isNegative()) throw new IllegalArgumentException("Reaper.Config.stale must be > 0, got " + stale);
            if (nodeTimeout.isZero() || nodeTimeout.isNegative()) throw new IllegalArgumentException("Reaper.Config.nodeTimeout must be > 0, got " + nodeTimeout);
            if (maxRequeue < 0) throw new IllegalArgumentException("Reaper.Config.maxRequeue must be >= 0, got " + maxRequeue);
            if (batch < 1) throw new IllegalArgumentException("Reaper.Config.batch must be > 0, got " + batch);
        }
    }

    /** One run: rows requeued and quarantined, batches written; {@code skipped} when another node was sweeping. */
    public record Result(int requeued, int quarantined, int batches, boolean skipped, List<StaleTask> rows) {
        public boolean empty() {
            return requeued == 0 && quarantined == 0;
        }
    }

    private final Config config;
    private final TaskStore store;
    private final DispatchMetrics metrics;
    private final PeriodicService service;

    public Reaper(Config config, TaskStore store, DispatchMetrics metrics) {
        this.config = config;
        this.store = store;
        this.metrics = metrics;
        this.service = new PeriodicService("reaper", config.interval(), this::runOnce);
    }

    /** One full pass in batches (each its own transaction) until a batch comes back short. */
    public Result runOnce() {
        int requeued = 0, quarantined = 0, batches = 0;
        List<StaleTask> rows = new ArrayList<>();
        while (batches < MAX_BATCHES_PER_RUN) {
            Optional<List<StaleTask>> batch = store.requeueStale(config.stale(), config.nodeTimeout(),
                    config.maxRequeue(), config.batch(), config.node(), config.ownFresh());
            if (batch.isEmpty()) {
                return new Result(requeued, quarantined, batches, true, rows);
            }
            batches++;
            for (StaleTask t : batch.get()) {
                if (t.action().equals("requeue")) requeued++;
                else quarantined++;
                rows.add(t);
                log.info("reaper: task={} action={} previous_owner={} lease_token={} reason={}", t.id(), t.action(),
                        t.owner(), t.leaseToken(), t.reason());
            }
            if (batch.get().size() < config.batch()) break;
        }
        Result r = new Result(requeued, quarantined, batches, false, rows);
        metrics.reaperSweep(requeued, quarantined);
        metrics.requeued(requeued);
        metrics.quarantined(quarantined);
        if (!r.empty()) log.info("reaper: requeued={} quarantined={} batches={}", requeued, quarantined, batches);
        return r;
    }

    /** What {@link #runOnce()} would do now (first batch of up to {@code limit} rows); changes nothing. */
    public List<StaleTask> plan(int limit) {
        return store.planStale(config.stale(), config.nodeTimeout(), config.maxRequeue(), limit);
    }

    public void start() {
        service.start();
    }

    public void stop() {
        service.stop();
    }
}

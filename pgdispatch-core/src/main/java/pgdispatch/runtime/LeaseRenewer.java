package pgdispatch.runtime;

import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.maintenance.PeriodicService;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.HeldLease;
import pgdispatch.store.RenewResult;
import pgdispatch.store.StoreException;
import pgdispatch.store.StuckRules;
import pgdispatch.store.TaskStore;

/**
 * Every {@code TASK_RENEW_S}, extends every lease this node holds and heartbeats the node row, in one
 * statement; the same statement ends, by their kind's {@link StuckRules}, the attempts whose handlers
 * went silent past their cadence bound. Leases it did not renew (lost, or ended as stuck): their handlers
 * are interrupted and their results will be discarded. When the node row now belongs to another incarnation, the node stops claiming.
 */
final class LeaseRenewer {
    private static final Logger log = LoggerFactory.getLogger(LeaseRenewer.class);

    private final String owner;
    private final String incarnation;
    private final TaskStore store;
    private final HeldLeases leases;
    private final DispatchMetrics metrics;
    private final Runnable onRegistrationLost;
    private final StuckRules stuckRules;
    private final Runnable afterRenewal;
    private final PeriodicService service;
    private int failures;
    /** Readiness reads these: when a tick last succeeded, and the failures in a row since (with the last error). */
    private volatile long lastSuccessNanos = System.nanoTime();
    private volatile int failuresInARow;
    private volatile String lastError;

    LeaseRenewer(String owner, String incarnation, java.time.Duration interval, TaskStore store, HeldLeases leases,
                 StuckRules stuckRules, DispatchMetrics metrics, Runnable onRegistrationLost, Runnable afterRenewal) {
        this.stuckRules = stuckRules;
        this.afterRenewal = afterRenewal;
        this.owner = owner;
        this.incarnation = incarnation;
        this.store = store;
        this.leases = leases;
        this.metrics = metrics;
        this.onRegistrationLost = onRegistrationLost;
        this.service = new PeriodicService("renewer", interval, this::runOnce);
    }

    /** One tick; returns what the database said. */
    synchronized RenewResult runOnce() {
        List<HeldLease> held;
        RenewResult r;
        leases.writes.lock();
        try {
            held = leases.renewable();
            r = store.renewHeld(owner, incarnation, held, stuckRules);
        } catch (RuntimeException e) {
            failures++;
            failuresInARow = failures;
            lastError = e.getMessage();
            log.warn("renewer: renewing {} leases failed ({} in a row): {}; retrying next tick, leases are not assumed",
                    leases.size(), failures, e.getMessage());
            throw e;
        } finally {
            leases.writes.unlock();
        }
        if (failures > 0) log.info("renewer: database reachable again after {} failed ticks; reconciled {} leases", failures, held.size());
        failures = 0;
        failuresInARow = 0;
        lastSuccessNanos = System.nanoTime();
        metrics.leasesRenewed(r.renewed().size());
        metrics.leasesLost(r.lost().size());
        for (Map.Entry<Long, String> lost : r.lost().entrySet()) {
            log.warn("renewer: task={} owner={}: lease lost (task is now {}); interrupting its handler",
                    lost.getKey(), owner, lost.getValue());
            leases.markLost(lost.getKey(), "lease lost: task is now " + lost.getValue());
        }
        for (Map.Entry<Long, String> stuck : r.stuck().entrySet()) {
            HeldLeases.Held h = leases.get(stuck.getKey());
            String kind = h == null ? "unknown" : h.task.kind();
            StuckRules.Rule rule = stuckRules.byKind().get(kind);
            log.warn("renewer: task={} kind={} owner={}: {}; interrupting its handler", stuck.getKey(), kind, owner,
                    stuck.getValue());
            metrics.stuck(kind, rule != null && rule.requeue() ? "requeue" : "fail_attempt");
            leases.markLost(stuck.getKey(), stuck.getValue());
        }
        if (!r.nodeRegistered()) {
            log.error("renewer: node {} incarnation {} is no longer registered (another process took this node id); "
                    + "stopping claims", owner, incarnation);
            onRegistrationLost.run();
        }
        afterRenewal.run();
        return r;
    }

    /** {@link System#nanoTime()} of the last successful tick (or of the start). */
    long lastSuccessNanos() {
        return lastSuccessNanos;
    }

    /** Ticks failed since the last success: 0 when the last tick renewed. */
    int failuresInARow() {
        return failuresInARow;
    }

    String lastError() {
        return lastError;
    }

    void start() {
        lastSuccessNanos = System.nanoTime();
        service.start();
    }

    void stop() {
        service.stop();
    }
}

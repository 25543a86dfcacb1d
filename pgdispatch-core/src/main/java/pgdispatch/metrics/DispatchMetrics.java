package pgdispatch.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import pgdispatch.store.TaskQueries;

/**
 * Every meter pgdispatch exports: names, tags and descriptions live here and nowhere else
 * (docs/MONITORING.md lists them as Prometheus names: {@code pgdispatch.tasks.claimed} is exported as
 * {@code pgdispatch_tasks_claimed_total}). Counters per (queue, kind) are cached so the hot path does
 * a map lookup, not a registry search.
 */
public final class DispatchMetrics {
    private final MeterRegistry registry;
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();
    private final Map<String, Timer> handlerTimers = new ConcurrentHashMap<>();
    private final Timer claimTimer;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicReference<Map<String, double[]>> queues = new AtomicReference<>(Map.of());
    private final AtomicReference<Set<String>> pausedQueues = new AtomicReference<>(Set.of());
    private final AtomicReference<Map<String, double[]>> limits = new AtomicReference<>(Map.of());
    private final Map<String, Boolean> limitGauges = new ConcurrentHashMap<>();
    private final Map<String, Boolean> queueGauges = new ConcurrentHashMap<>();
    private final AtomicReference<Map<String, TaskQueries.KindLeases>> leases = new AtomicReference<>(Map.of());
    private final Map<String, Boolean> leaseGauges = new ConcurrentHashMap<>();
    private final Map<String, java.util.concurrent.atomic.AtomicLong> unhandled = new ConcurrentHashMap<>();
    private final Counter requeued;
    private final Counter quarantined;
    private final Counter leasesRenewed;
    private final Counter leasesLost;
    private final Counter completionsRefused;
    private final Counter outcomesReplaced;
    private final Counter handlerThrowables;
    private final Counter startupRecovered;
    private final Counter reaperSweeps;
    private final Counter pruned;
    private final Counter reaperRequeued;
    private final Counter reaperQuarantined;
    /** Set by every read of a gauge this node's database reads feed (a scrape, a push registry's step). */
    private final java.util.concurrent.atomic.AtomicBoolean read = new java.util.concurrent.atomic.AtomicBoolean();
    private final Counter schedulerErrors;

    /**
     * Registers every untagged meter at once, so a scrape shows them at 0 before their first event (an
     * alert on {@code increase(...)} needs the series to exist); tagged ones follow in {@link #serving}.
     */
    public DispatchMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.claimTimer = Timer.builder("pgdispatch.claim").description("Time of one claim statement")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(10)).register(registry);
        Gauge.builder("pgdispatch.tasks.in.flight", inFlight, AtomicInteger::get)
                .description("Tasks this node holds a lease on").register(registry);
        this.requeued = simple("pgdispatch.tasks.requeued", "Stale running tasks put back to pending");
        this.quarantined = simple("pgdispatch.tasks.quarantined", "Tasks quarantined after their requeue budget");
        this.leasesRenewed = simple("pgdispatch.leases.renewed", "Leases renewed by the renewal tick");
        this.leasesLost = simple("pgdispatch.leases.lost", "Leases this node learned it lost");
        this.completionsRefused = simple("pgdispatch.completions.refused",
                "Outcomes refused because the lease was gone (zombie writes)");
        this.outcomesReplaced = simple("pgdispatch.outcomes.replaced",
                "Handler outcomes the database refused to store, written as permanent failures instead");
        this.handlerThrowables = simple("pgdispatch.handler.errors.escaped",
                "Throwables from handler code outside the attempt's own catch (Errors, timeout(), lease()), turned into failures");
        this.startupRecovered = simple("pgdispatch.startup.recovered",
                "Tasks a previous incarnation left running, requeued at start");
        this.reaperSweeps = simple("pgdispatch.reaper.sweeps", "Reaper sweeps run");
        this.pruned = simple("pgdispatch.tasks.pruned", "Finished tasks deleted by retention");
        // tag values are the reaper's action words, as `reap --json` and pgdispatch_reap_stale() print them
        this.reaperRequeued = reaperRows("requeue");
        this.reaperQuarantined = reaperRows("quarantine");
        this.schedulerErrors = simple("pgdispatch.scheduler.errors",
                "Scheduler runs or schedules that failed (a row Java cannot read, a database error); retried at the next run");
    }

    /**
     * Registers the per-(queue, kind) counters, the per-kind handler timers and the per-queue gauges
     * of what this node serves, at 0, before its first claim.
     */
    public void serving(Collection<String> queueNames, Collection<String> kinds) {
        for (String q : queueNames) {
            for (String k : kinds) {
                claimedCounter(q, k);
                succeededCounter(q, k);
                failedCounter(q, k);
                retriedCounter(q, k);
            }
            registerQueueGauges(q);
        }
        for (String k : kinds) handlerTimer(k);
        // the served kinds at 0, so the series exists (for alerts and dashboards) before the first orphan
        for (String k : kinds) unhandledGauge(k);
    }

    /**
     * Pending tasks whose kind no live node handles, by kind ({@code pgdispatch.tasks.unhandled}); a kind
     * seen before and now absent drops to 0, so an alert on {@code > 0} clears.
     */
    public void unhandled(Map<String, Long> pendingByKind) {
        for (var e : pendingByKind.entrySet()) unhandledGauge(e.getKey()).set(e.getValue());
        unhandled.forEach((k, v) -> {
            if (!pendingByKind.containsKey(k)) v.set(0);
        });
    }

    private java.util.concurrent.atomic.AtomicLong unhandledGauge(String kind) {
        return unhandled.computeIfAbsent(kind, k -> {
            var v = new java.util.concurrent.atomic.AtomicLong();
            Gauge.builder("pgdispatch.tasks.unhandled", v, java.util.concurrent.atomic.AtomicLong::get)
                    .description("Pending tasks whose kind no live node has a handler for (they wait forever)")
                    .tag("kind", k).register(registry);
            return v;
        });
    }

    /** What readiness judges, read by the health gauges at each scrape (the node's parts, no database I/O). */
    public interface HealthFigures {
        double claimerCycleAgeSeconds();

        double renewerSuccessAgeSeconds();

        double renewerFailuresInARow();

        double completerOldestUnwrittenAgeSeconds();

        double completerUnwritten();

        /** Whether readiness reports a problem of {@code part} now. */
        boolean problem(String part);

        /** The part tags {@link #problem} knows. */
        java.util.List<String> parts();
    }

    /**
     * Whether anything read the meters since the last call (and forget it): the node refreshes the
     * cluster-wide gauges (queue depth and lag, leases, limits, paused queues; five queries) only then, so
     * a node nobody scrapes sends none of them (issue 17, idle cost). A scrape reads every gauge, and the
     * readiness gauge is always registered.
     */
    public boolean readSinceLastLook() {
        return read.getAndSet(false);
    }

    private <T> java.util.function.ToDoubleFunction<T> reading(java.util.function.ToDoubleFunction<T> f) {
        return x -> {
            read.set(true);
            return f.applyAsDouble(x);
        };
    }

    /**
     * Registers the readiness gauges over {@code f} (once the node runs): one 0/1 per part, and the
     * figure each part is judged by, so an alert can fire on the figure before readiness flips.
     */
    public void health(HealthFigures f) {
        Gauge.builder("pgdispatch.node.ready", f, reading(x -> x.parts().stream().anyMatch(x::problem) ? 0 : 1))
                .description("1 when no part of this node reports a problem (the database is not asked)")
                .strongReference(true).register(registry);
        for (String part : f.parts()) {
            Gauge.builder("pgdispatch.health.problem", f, x -> x.problem(part) ? 1 : 0)
                    .description("1 while readiness reports a problem of this part").tag("part", part)
                    .strongReference(true).register(registry);
        }
        Gauge.builder("pgdispatch.claimer.cycle.age", f, HealthFigures::claimerCycleAgeSeconds).baseUnit("seconds")
                .description("Seconds since the claim loop last completed a cycle").strongReference(true).register(registry);
        Gauge.builder("pgdispatch.renewer.success.age", f, HealthFigures::renewerSuccessAgeSeconds).baseUnit("seconds")
                .description("Seconds since the last successful lease renewal tick").strongReference(true).register(registry);
        Gauge.builder("pgdispatch.renewer.failures", f, HealthFigures::renewerFailuresInARow)
                .description("Renewal ticks failed in a row (0 when the last one renewed)").strongReference(true)
                .register(registry);
        Gauge.builder("pgdispatch.completer.unwritten.age", f, HealthFigures::completerOldestUnwrittenAgeSeconds)
                .baseUnit("seconds").description("Seconds the oldest outcome not yet written has waited (0 when none)")
                .strongReference(true).register(registry);
        Gauge.builder("pgdispatch.completer.unwritten", f, HealthFigures::completerUnwritten)
                .description("Finished attempts whose outcome is not written yet").strongReference(true).register(registry);
    }

    /** Metrics that go nowhere: for tools and tests that do not export them. */
    public static DispatchMetrics noop() {
        return new DispatchMetrics(new SimpleMeterRegistry());
    }

    public MeterRegistry registry() {
        return registry;
    }

    /** {@code n} tasks of one queue and kind at once: the hot path counts per batch, not per task. */
    public void claimed(String queue, String kind, int n) {
        claimedCounter(queue, kind).increment(n);
    }

    public void succeeded(String queue, String kind, int n) {
        succeededCounter(queue, kind).increment(n);
    }

    public void failed(String queue, String kind, int n) {
        failedCounter(queue, kind).increment(n);
    }

    public void retried(String queue, String kind, int n) {
        retriedCounter(queue, kind).increment(n);
    }

    private Counter claimedCounter(String queue, String kind) {
        return counter("pgdispatch.tasks.claimed", "Tasks claimed by this node", queue, kind);
    }

    private Counter succeededCounter(String queue, String kind) {
        return counter("pgdispatch.tasks.succeeded", "Attempts completed and accepted", queue, kind);
    }

    private Counter failedCounter(String queue, String kind) {
        return counter("pgdispatch.tasks.failed", "Tasks failed for good (no attempts left or permanent)", queue, kind);
    }

    private Counter retriedCounter(String queue, String kind) {
        return counter("pgdispatch.tasks.retried", "Failed attempts scheduled for retry", queue, kind);
    }

    public void requeued(int n) {
        add(requeued, n);
    }

    public void quarantined(int n) {
        add(quarantined, n);
    }

    public void leasesRenewed(int n) {
        add(leasesRenewed, n);
    }

    public void leasesLost(int n) {
        add(leasesLost, n);
    }

    public void completionsRefused(int n) {
        add(completionsRefused, n);
    }

    public void outcomesReplaced(int n) {
        add(outcomesReplaced, n);
    }

    public void handlerThrowable() {
        add(handlerThrowables, 1);
    }

    public void startupRecovered(int n) {
        add(startupRecovered, n);
    }

    public void reaperSweep(int requeuedRows, int quarantinedRows) {
        reaperSweeps.increment();
        add(reaperRequeued, requeuedRows);
        add(reaperQuarantined, quarantinedRows);
    }

    public void pruned(int n) {
        add(pruned, n);
    }

    /**
     * {@code n} tasks a schedule enqueued; {@code how}: {@code fired} (on time) or {@code backfilled} (a
     * missed fire time, by the backfill policy), the words of {@code schedule_fires.action}.
     */
    public void scheduleFired(String schedule, String how, int n) {
        Counter c = counters.computeIfAbsent("pgdispatch.schedule.fires|" + schedule + '|' + how, k -> Counter
                .builder("pgdispatch.schedule.fires").description("Tasks enqueued by a schedule, per fire time")
                .tag("schedule", schedule).tag("how", how).register(registry));
        add(c, n);
    }

    /** Missed fire times a schedule's policy skipped (no task): each decision is a {@code skipped} row of schedule_fires. */
    public void scheduleSkipped(String schedule, long n) {
        Counter c = counters.computeIfAbsent("pgdispatch.schedule.skipped|" + schedule, k -> Counter
                .builder("pgdispatch.schedule.skipped").description("Missed fire times skipped by a schedule's policy")
                .tag("schedule", schedule).register(registry));
        if (n > 0) c.increment(n);
    }

    public void schedulerError() {
        schedulerErrors.increment();
    }

    /**
     * Waiting tasks released (made pending) and cancelled by their dependencies (V12_2), cluster-wide: the
     * database releases them, this node counts the events it reads (every node counts the same ones).
     */
    public void dependencies(long released, long cancelled) {
        dependencyCounter("released").increment(released);
        dependencyCounter("cancelled").increment(cancelled);
    }

    private Counter dependencyCounter(String outcome) {
        return counters.computeIfAbsent("pgdispatch.dependencies.released|" + outcome, k -> Counter.builder("pgdispatch.dependencies.released")
                .description("Waiting tasks whose dependencies ended, by outcome: released (made pending) or cancelled"
                        + " (a dependency ended otherwise than succeeded); cluster-wide, read from task_event_log")
                .tag("outcome", outcome).register(registry));
    }

    /**
     * Registers, for each handled kind, its stuck counter (under the kind's policy), its extension counters
     * and its lease gauges, so a scrape shows them at zero before anything happened (dashboards and
     * alerts see the series exist). {@code policyByKind}: "fail_attempt" or "requeue"; null for a kind
     * never judged stuck.
     */
    public void servingLeases(Map<String, String> policyByKind) {
        policyByKind.forEach((kind, policy) -> {
            if (policy != null) stuckCounter(kind, policy);
            extensionCounter(kind, "granted");
            extensionCounter(kind, "refused");
            registerLeaseGauges(kind);
        });
    }

    /** An attempt this node judged stuck and ended ({@code stuck} event), by kind and policy. */
    public void stuck(String kind, String policy) {
        stuckCounter(kind, policy).increment();
    }

    private Counter stuckCounter(String kind, String policy) {
        return counters.computeIfAbsent("pgdispatch.tasks.stuck|" + kind + '|' + policy, k -> Counter.builder("pgdispatch.tasks.stuck")
                .description("Attempts this node judged stuck (silent past their cadence bound) and ended by their kind's policy")
                .tag("kind", kind).tag("policy", policy).register(registry));
    }

    /** A lease extension a handler asked for, by kind and answer (granted, refused). */
    public void leaseExtension(String kind, String answer) {
        extensionCounter(kind, answer).increment();
    }

    private Counter extensionCounter(String kind, String answer) {
        return counters.computeIfAbsent("pgdispatch.lease.extensions|" + kind + '|' + answer, k -> Counter.builder("pgdispatch.lease.extensions")
                .description("Lease extensions handlers asked for (TaskContext.extendLease), by answer")
                .tag("kind", kind).tag("answer", answer).register(registry));
    }

    private Counter reaperRows(String action) {
        return Counter.builder("pgdispatch.reaper.rows").description("Rows the reaper moved, by action")
                .tag("action", action).register(registry);
    }

    public Timer.Sample startClaim() {
        return Timer.start(registry);
    }

    public void claimDone(Timer.Sample sample) {
        sample.stop(claimTimer);
    }

    public void handlerDone(String kind, long nanos) {
        Timer t = handlerTimers.get(kind); // once per task: a plain read before the locking computeIfAbsent
        (t != null ? t : handlerTimer(kind)).record(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
    }

    private Timer handlerTimer(String kind) {
        return handlerTimers.computeIfAbsent(kind, k -> Timer.builder("pgdispatch.handler")
                .description("Handler run time per attempt").tag("kind", k).publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(10))
                .register(registry));
    }

    public void inFlight(int n) {
        inFlight.set(n);
    }

    /** Replaces the per-queue depth and lag figures (pending rows, seconds since the oldest became due). */
    public void queues(Map<String, double[]> depthAndLag) {
        queues.set(Map.copyOf(depthAndLag));
        for (String q : depthAndLag.keySet()) registerQueueGauges(q);
    }

    /** Replaces the per-kind lease figures of the running tasks (cluster-wide, read by this node). */
    public void leases(List<TaskQueries.KindLeases> byKind) {
        Map<String, TaskQueries.KindLeases> m = new java.util.HashMap<>();
        for (TaskQueries.KindLeases k : byKind) m.put(k.kind(), k);
        leases.set(Map.copyOf(m));
        for (String kind : m.keySet()) registerLeaseGauges(kind);
    }

    private void registerLeaseGauges(String kind) {
        leaseGauges.computeIfAbsent(kind, k -> {
            leaseGauge("pgdispatch.running.expiring", "Running tasks whose lease expires within the next renewal interval", k,
                    x -> (double) x.expiring(), null);
            leaseGauge("pgdispatch.running.stale", "Running tasks the reaper would take back now (lease expired, owner dead or stopped)",
                    k, x -> (double) x.stale(), null);
            leaseGauge("pgdispatch.running.stuck", "Running tasks silent past their stuck bound that their owner has not ended",
                    k, x -> (double) x.stuck(), null);
            leaseGauge("pgdispatch.running.silence.max", "Longest silence of a running handler (since its claim or last progress report)",
                    k, TaskQueries.KindLeases::silenceMaxSeconds, "seconds");
            leaseGauge("pgdispatch.running.renewals.avg", "Renewals per running attempt, average", k,
                    TaskQueries.KindLeases::renewalsAvg, null);
            leaseGauge("pgdispatch.running.renewals.max", "Renewals per running attempt, most", k,
                    x -> (double) x.renewalsMax(), null);
            leaseGauge("pgdispatch.running.extensions.max", "Lease extensions granted per running attempt, most", k,
                    x -> (double) x.extensionsMax(), null);
            return true;
        });
    }

    private void leaseGauge(String name, String description, String kind, Function<TaskQueries.KindLeases, Double> pick,
                            String unit) {
        // a kind with nothing running reads 0 (its figures are gone from the last refresh), not its last value
        Gauge.builder(name, leases, reading(ref -> {
                    TaskQueries.KindLeases x = ref.get().get(kind);
                    return x == null ? 0 : pick.apply(x);
                })).description(description).tag("kind", kind).baseUnit(unit).register(registry);
    }

    /**
     * Replaces the cluster-wide concurrency limits, by key ({@code kind:report}, {@code queue:mail}), each
     * {max running, running now}; a limit removed reads 0 running and -1 max from then on.
     */
    public void limits(Map<String, double[]> byKey) {
        limits.set(Map.copyOf(byKey));
        for (String key : byKey.keySet()) {
            limitGauges.computeIfAbsent(key, k -> {
                String scope = k.substring(0, k.indexOf(':'));
                String name = k.substring(k.indexOf(':') + 1);
                Gauge.builder("pgdispatch.limit.max", limits, reading(ref -> {
                            double[] a = ref.get().get(k);
                            return a == null ? -1 : a[0];
                        })).description("Cluster-wide limit on running tasks of a kind or queue (-1: none now)")
                        .tag("scope", scope).tag("name", name).register(registry);
                Gauge.builder("pgdispatch.limit.running", limits, reading(ref -> {
                            double[] a = ref.get().get(k);
                            return a == null ? 0 : a[1];
                        })).description("Tasks of a limited kind or queue running now, cluster-wide")
                        .tag("scope", scope).tag("name", name).register(registry);
                return true;
            });
        }
    }

    /** Replaces the set of paused queues ({@code pgdispatch.queue.paused} is 1 for them, else 0). */
    public void pausedQueues(Set<String> paused) {
        pausedQueues.set(Set.copyOf(paused));
        for (String q : paused) registerQueueGauges(q);
    }

    private void registerQueueGauges(String queue) {
        queueGauges.computeIfAbsent(queue, name -> {
            gauge("pgdispatch.queue.depth", "Due pending tasks in the queue", name, a -> a[0]);
            gauge("pgdispatch.queue.lag", "Seconds since the queue's oldest due pending task became due", name, a -> a[1]);
            Gauge.builder("pgdispatch.queue.paused", pausedQueues, reading(ref -> ref.get().contains(name) ? 1 : 0))
                    .description("1 while the queue is paused (no node claims from it), else 0").tag("queue", name)
                    .register(registry);
            return true;
        });
    }

    private void gauge(String name, String description, String queue, Function<double[], Double> pick) {
        Gauge.builder(name, queues, reading(ref -> {
                    double[] a = ref.get().get(queue);
                    return a == null ? 0 : pick.apply(a);
                })).description(description).tag("queue", queue)
                .baseUnit(name.endsWith("lag") ? "seconds" : null).register(registry);
    }

    private Counter counter(String name, String description, String queue, String kind) {
        return counters.computeIfAbsent(name + '|' + queue + '|' + kind, k -> Counter.builder(name)
                .description(description).tag("queue", queue).tag("kind", kind).register(registry));
    }

    private Counter simple(String name, String description) {
        return Counter.builder(name).description(description).register(registry);
    }

    private static void add(Counter c, int n) {
        if (n > 0) c.increment(n);
    }
}

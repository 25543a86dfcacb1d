package pgdispatch.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

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
    private final Map<String, Boolean> queueGauges = new ConcurrentHashMap<>();

    public DispatchMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.claimTimer = Timer.builder("pgdispatch.claim").description("Time of one claim statement")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(10)).register(registry);
        Gauge.builder("pgdispatch.tasks.in.flight", inFlight, AtomicInteger::get)
                .description("Tasks this node holds a lease on").register(registry);
    }

    /** Metrics that go nowhere: for tools and tests that do not export them. */
    public static DispatchMetrics noop() {
        return new DispatchMetrics(new SimpleMeterRegistry());
    }

    public MeterRegistry registry() {
        return registry;
    }

    public void claimed(String queue, String kind) {
        claimed(queue, kind, 1);
    }

    /** {@code n} tasks of one queue and kind at once: the hot path counts per batch, not per task. */
    public void claimed(String queue, String kind, int n) {
        counter("pgdispatch.tasks.claimed", "Tasks claimed by this node", queue, kind).increment(n);
    }

    public void succeeded(String queue, String kind) {
        succeeded(queue, kind, 1);
    }

    public void succeeded(String queue, String kind, int n) {
        counter("pgdispatch.tasks.succeeded", "Attempts completed and accepted", queue, kind).increment(n);
    }

    public void failed(String queue, String kind) {
        failed(queue, kind, 1);
    }

    public void failed(String queue, String kind, int n) {
        counter("pgdispatch.tasks.failed", "Tasks failed for good (no attempts left or permanent)", queue, kind).increment(n);
    }

    public void retried(String queue, String kind) {
        retried(queue, kind, 1);
    }

    public void retried(String queue, String kind, int n) {
        counter("pgdispatch.tasks.retried", "Failed attempts scheduled for retry", queue, kind).increment(n);
    }

    public void requeued(int n) {
        simple("pgdispatch.tasks.requeued", "Stale running tasks put back to pending", n);
    }

    public void quarantined(int n) {
        simple("pgdispatch.tasks.quarantined", "Tasks quarantined after their requeue budget", n);
    }

    public void leasesRenewed(int n) {
        simple("pgdispatch.leases.renewed", "Leases renewed by the renewal tick", n);
    }

    public void leasesLost(int n) {
        simple("pgdispatch.leases.lost", "Leases this node learned it lost", n);
    }

    public void completionsRefused(int n) {
        simple("pgdispatch.completions.refused", "Outcomes refused because the lease was gone (zombie writes)", n);
    }

    public void startupRecovered(int n) {
        simple("pgdispatch.startup.recovered", "Tasks a previous incarnation left running, requeued at start", n);
    }

    public void reaperSweep(int requeued, int quarantined) {
        simple("pgdispatch.reaper.sweeps", "Reaper sweeps run", 1);
        if (requeued > 0) reaperRows("requeue").increment(requeued);
        if (quarantined > 0) reaperRows("quarantine").increment(quarantined);
    }

    public void pruned(int n) {
        simple("pgdispatch.tasks.pruned", "Finished tasks deleted by retention", n);
    }

    private Counter reaperRows(String action) {
        return counters.computeIfAbsent("reaper.rows|" + action, k -> Counter.builder("pgdispatch.reaper.rows")
                .description("Rows the reaper moved, by action").tag("action", action).register(registry));
    }

    public Timer.Sample startClaim() {
        return Timer.start(registry);
    }

    public void claimDone(Timer.Sample sample) {
        sample.stop(claimTimer);
    }

    public void handlerDone(String kind, long nanos) {
        Timer t = handlerTimers.get(kind); // once per task: a plain read before the locking computeIfAbsent
        if (t != null) {
            t.record(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
            return;
        }
        handlerTimers.computeIfAbsent(kind, k -> Timer.builder("pgdispatch.handler")
                .description("Handler run time per attempt").tag("kind", k).publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1)).maximumExpectedValue(Duration.ofMinutes(10))
                .register(registry)).record(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
    }

    public void inFlight(int n) {
        inFlight.set(n);
    }

    /** Replaces the per-queue depth and lag figures (pending rows, seconds since the oldest became due). */
    public void queues(Map<String, double[]> depthAndLag) {
        queues.set(Map.copyOf(depthAndLag));
        for (String q : depthAndLag.keySet()) {
            queueGauges.computeIfAbsent(q, name -> {
                gauge("pgdispatch.queue.depth", "Pending tasks in the queue", name, a -> a[0]);
                gauge("pgdispatch.queue.lag", "Seconds since the queue's oldest due pending task became due", name, a -> a[1]);
                return true;
            });
        }
    }

    private void gauge(String name, String description, String queue, Function<double[], Double> pick) {
        Gauge.builder(name, queues, ref -> {
                    double[] a = ref.get().get(queue);
                    return a == null ? 0 : pick.apply(a);
                }).description(description).tag("queue", queue)
                .baseUnit(name.endsWith("lag") ? "seconds" : null).register(registry);
    }

    private Counter counter(String name, String description, String queue, String kind) {
        return counters.computeIfAbsent(name + '|' + queue + '|' + kind, k -> Counter.builder(name)
                .description(description).tag("queue", queue).tag("kind", kind).register(registry));
    }

    private void simple(String name, String description, int n) {
        if (n <= 0) return;
        counters.computeIfAbsent(name, k -> Counter.builder(name).description(description).register(registry)).increment(n);
    }
}

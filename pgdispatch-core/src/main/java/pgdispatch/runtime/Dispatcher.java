package pgdispatch.runtime;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.StuckPolicy;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.maintenance.PeriodicService;
import pgdispatch.maintenance.Pruner;
import pgdispatch.maintenance.Reaper;
import pgdispatch.maintenance.StartupRecovery;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Database;
import pgdispatch.store.HeldLease;
import pgdispatch.store.Mutant;
import pgdispatch.store.NodeStore;
import pgdispatch.store.StuckRules;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskStore;

/**
 * One node: starts its parts in order (schema check, node registration, startup recovery, completer,
 * renewer, wake-ups, claim loop, maintenance) and stops them in reverse, draining running tasks and
 * releasing what is left. Embeddable: {@code Dispatcher.builder(config).handler(h).build().start()}.
 */
public final class Dispatcher implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Dispatcher.class);
    public static final String VERSION = "0.1.0";
    /**
     * Every minute: the check counts pending tasks by kind (a scan of the pending rows), too much for
     * the 15 s gauge tick with a large backlog, and a missing handler is a deployment mistake that a
     * minute's delay in noticing does not make worse.
     */
    public static final Duration DEFAULT_UNHANDLED_INTERVAL = Duration.ofMinutes(1);

    private final DispatcherConfig config;
    private final Database db;
    private final boolean ownsDatabase;
    private final Map<String, TaskHandler> handlers;
    private final DispatchMetrics metrics;
    private final RetryPolicy retryPolicy;
    private final boolean force;
    private final int claimBatch;
    private final TaskStore store;
    private final NodeStore nodes;
    private final HeldLeases leases = new HeldLeases();
    private final AtomicBoolean started = new AtomicBoolean();
    private final AtomicBoolean stopped = new AtomicBoolean();
    private volatile boolean registered;
    private UUID incarnation;
    private WorkerPool workers;
    private ScheduledExecutorService timeouts;
    private Completer completer;
    private LeaseRenewer renewer;
    private Wakeups wakeups;
    private ClaimLoop claimLoop;
    private Reaper reaper;
    private Pruner pruner;
    private PeriodicService gauges;
    private PeriodicService unhandledKinds;
    private final Duration unhandledInterval;
    private StartupRecovery.Result recovery;

    private Dispatcher(Builder b) {
        this.config = b.config;
        this.ownsDatabase = b.database == null;
        this.db = b.database != null ? b.database
                : Database.open(config.databaseUrl(), config.poolSize(), "pgdispatch-" + config.nodeId(), b.registry,
                        config.socketTimeout());
        this.handlers = Map.copyOf(b.handlers);
        this.metrics = new DispatchMetrics(b.registry);
        this.retryPolicy = b.retryPolicy != null ? b.retryPolicy
                : new RetryPolicy(config.retryBase(), config.retryMax(), RetryPolicy.DEFAULT.jitter());
        this.force = b.force;
        this.claimBatch = b.claimBatch;
        this.unhandledInterval = b.unhandledInterval;
        this.store = new TaskStore(db);
        this.nodes = new NodeStore(db);
    }

    public static Builder builder(DispatcherConfig config) {
        return new Builder(config);
    }

    /** Builds a {@link Dispatcher}; the built-in kinds are registered unless turned off. */
    public static final class Builder {
        private final DispatcherConfig config;
        private Database database;
        private final Map<String, TaskHandler> handlers = new LinkedHashMap<>();
        private MeterRegistry registry = new SimpleMeterRegistry();
        private RetryPolicy retryPolicy; // null: TASK_RETRY_BASE_S and TASK_RETRY_MAX_S of the configuration
        private boolean force;
        private boolean builtins = true;
        private int claimBatch = ClaimLoop.DEFAULT_CLAIM_BATCH;
        private Duration unhandledInterval = DEFAULT_UNHANDLED_INTERVAL;

        private Builder(DispatcherConfig config) {
            this.config = config;
        }

        /** Shares {@code database} (its pool) instead of opening one; the caller closes it. */
        public Builder database(Database database) {
            this.database = database;
            return this;
        }

        public Builder handler(TaskHandler h) {
            if (handlers.putIfAbsent(h.kind(), h) != null) {
                throw new IllegalArgumentException("two handlers for kind '" + h.kind() + "'");
            }
            return this;
        }

        public Builder handlers(Iterable<? extends TaskHandler> hs) {
            for (TaskHandler h : hs) handler(h);
            return this;
        }

        public Builder builtins(boolean on) {
            this.builtins = on;
            return this;
        }

        public Builder meterRegistry(MeterRegistry r) {
            this.registry = r;
            return this;
        }

        public Builder retryPolicy(RetryPolicy p) {
            this.retryPolicy = p;
            return this;
        }

        /**
         * The most tasks one claim statement takes: free worker slots plus tasks claimed ahead into the
         * local buffer while handlers are short (benchmarks vary it).
         */
        public Builder claimBatch(int max) {
            if (max < 1) throw new IllegalArgumentException("claimBatch must be > 0, got " + max);
            this.claimBatch = max;
            return this;
        }

        /** How often the node looks for pending tasks whose kind no live node handles (tests shorten it). */
        public Builder unhandledKindsInterval(Duration every) {
            this.unhandledInterval = every;
            return this;
        }

        /** Take the node id even from a live holder (its claims will then be refused). */
        public Builder force(boolean f) {
            this.force = f;
            return this;
        }

        public Dispatcher build() {
            if (builtins) {
                for (TaskHandler h : BuiltinHandlers.all()) handlers.putIfAbsent(h.kind(), h);
            }
            if (handlers.isEmpty()) throw new IllegalArgumentException("a dispatcher needs at least one handler");
            for (TaskHandler h : handlers.values()) {
                Duration lease;
                try {
                    lease = h.lease();
                } catch (RuntimeException e) {
                    throw new IllegalArgumentException("handler '" + h.kind() + "': lease() threw " + e, e);
                }
                if (lease != null && lease.compareTo(config.renewInterval()) <= 0) {
                    throw new IllegalArgumentException("handler '" + h.kind() + "' lease " + lease.toSeconds()
                            + "s must be longer than TASK_RENEW_S=" + config.renewInterval().toSeconds());
                }
                if (h.maxLeaseExtensions() < 0) {
                    throw new IllegalArgumentException("handler '" + h.kind() + "' maxLeaseExtensions()="
                            + h.maxLeaseExtensions() + " must be >= 0");
                }
            }
            return new Dispatcher(this);
        }
    }

    /** Starts the node; returns once it is claiming. Refuses when the schema or the node id is not ours. */
    public Dispatcher start() throws InterruptedException {
        if (!started.compareAndSet(false, true)) throw new IllegalStateException("already started");
        try {
            startParts();
        } catch (RuntimeException | InterruptedException | Error e) {
            halt(); // stop what did start (threads, own pool); the caller sees the real cause, not a follow-up error
            throw e;
        }
        return this;
    }

    private void startParts() throws InterruptedException {
        log.info("dispatcher: node={} configuration {}", config.nodeId(), config.describe());
        if (Mutant.ACTIVE != Mutant.NONE) {
            log.error("dispatcher: node={} runs the seeded bug {}={} (a mutation check; never in production)", config.nodeId(),
                    Mutant.PROPERTY, Mutant.ACTIVE.label());
        }
        db.requireCurrentSchema();
        register();
        recovery = new StartupRecovery(new StartupRecovery.Config(config.nodeId(), config.maxRequeue(),
                StartupRecovery.DEFAULT_BATCH), store, metrics).runOnce();

        metrics.serving(config.queues(), handlers.keySet());
        Map<String, String> stuckPolicyByKind = new LinkedHashMap<>();
        for (TaskHandler h : handlers.values()) {
            StuckPolicy p = h.stuckPolicy();
            stuckPolicyByKind.put(h.kind(), p == null ? null : p.action() == StuckPolicy.Action.REQUEUE ? "requeue" : "fail_attempt");
        }
        metrics.servingLeases(stuckPolicyByKind);
        Map<String, Duration> leaseByKind = new LinkedHashMap<>();
        for (TaskHandler h : handlers.values()) leaseByKind.put(h.kind(), h.lease() == null ? config.lease() : h.lease());

        workers = new WorkerPool(config.concurrency());
        timeouts = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("pgdispatch-timeouts").factory());
        completer = new Completer(config.nodeId(), store, leases, metrics, () -> {
            ClaimLoop c = claimLoop;
            if (c != null) c.written();
        });
        completer.start();
        TaskExecution.Node execution = new TaskExecution.Node(config.nodeId(), store, completer, timeouts, retryPolicy,
                metrics, stopped::get, config.maxResultBytes(), workers);
        renewer = new LeaseRenewer(config.nodeId(), incarnation.toString(), config.renewInterval(), store, leases,
                stuckRules(), metrics, this::onRegistrationLost);
        renewer.start();
        claimLoop = new ClaimLoop(config.nodeId(), config.queues(), leaseByKind, config.maxRequeue(),
                config.pollInterval(), config.concurrency(), claimBatch, config.maxPayloadBytes(), store, leases, metrics, workers,
                h -> new TaskExecution(h, handlers.get(h.task.kind()), execution, () -> claimLoop.slotFreed()),
                () -> wakeups != null && wakeups.listening());
        wakeups = new Wakeups(config.databaseUrl(), config.socketTimeout(), new HashSet<>(config.queues()), q -> claimLoop.wake());
        wakeups.start();
        claimLoop.start();
        reaper = new Reaper(new Reaper.Config(Reaper.intervalFor(config.renewInterval()), config.stale(), config.nodeTimeout(),
                config.maxRequeue(), config.reapBatch()), store, metrics);
        reaper.start();
        pruner = new Pruner(new Pruner.Config(Pruner.DEFAULT_INTERVAL, config.retention(), Pruner.DEFAULT_BATCH), store, metrics);
        pruner.start();
        TaskQueries queries = new TaskQueries(db);
        StuckRules rules = stuckRules();
        gauges = new PeriodicService("gauges", Duration.ofSeconds(15), () -> {
            metrics.queues(queries.depthAndLag());
            metrics.leases(queries.leaseStats(config.renewInterval(), config.nodeTimeout(), rules));
        });
        gauges.start();
        unhandledKinds = new PeriodicService("unhandled-kinds", unhandledInterval, () -> warnUnhandled(queries));
        unhandledKinds.start();
        log.info("dispatcher: node={} incarnation={} started: queues={} kinds={} concurrency={} lease={}s renew={}s",
                config.nodeId(), incarnation, config.queues(), handlers.keySet(), config.concurrency(),
                config.lease().toSeconds(), config.renewInterval().toSeconds());
    }

    /** Each handler's {@link StuckPolicy} as the renewal statement applies it (kinds that opt out: none). */
    private StuckRules stuckRules() {
        Map<String, StuckRules.Rule> rules = new LinkedHashMap<>();
        for (TaskHandler h : handlers.values()) {
            StuckPolicy p = h.stuckPolicy();
            if (p != null) {
                rules.put(h.kind(), new StuckRules.Rule(p.factor(), p.floor(), p.judgeSilent(),
                        p.action() == StuckPolicy.Action.REQUEUE));
            }
        }
        return new StuckRules(rules, config.stale(), config.maxRequeue());
    }

    // the pending tasks no live node (this one included) has a handler for: a kind whose handler jar was
    // not deployed, or a typo in a producer; they would wait forever without a word
    private void warnUnhandled(TaskQueries queries) {
        Map<String, Long> orphans = queries.pendingWithoutHandler(config.nodeTimeout());
        metrics.unhandled(orphans);
        if (!orphans.isEmpty()) {
            log.warn("dispatcher: pending tasks whose kind no live node handles: {} (this node serves kinds={});"
                    + " deploy a handler for them or cancel them", orphans, handlers.keySet());
        }
    }

    private void register() throws InterruptedException {
        var ok = NodeRegistration.register(nodes, config, new ArrayList<>(handlers.keySet()), VERSION, force);
        incarnation = ok.incarnation();
        registered = true;
    }

    /** Another live process holds the node id. */
    public static final class NodeIdInUseException extends IllegalStateException {
        public NodeIdInUseException(String nodeId, String host, long pid, String why) {
            super("DISPATCHER_NODE_ID=" + nodeId + " is in use by pid " + pid + " on host " + host + " (" + why
                    + "); start this node with another DISPATCHER_NODE_ID, or with --force if that process is gone");
        }
    }

    private void onRegistrationLost() {
        registered = false;
        Thread.ofPlatform().daemon().name("pgdispatch-stop").start(this::stop);
    }

    /**
     * Graceful stop (SIGTERM): no new claims; running tasks get up to {@code TASK_DRAIN_S} to finish;
     * what is still held then is released back to pending without charging an attempt; the node is
     * marked stopped. Idempotent.
     */
    public void stop() {
        if (!started.get() || !stopped.compareAndSet(false, true)) return;
        if (claimLoop == null) { // start() failed part-way: nothing runs, nothing is held
            stopped.set(false);
            halt();
            return;
        }
        log.info("dispatcher: node={} stopping: draining {} running tasks for up to {}s", config.nodeId(), leases.size(),
                config.drainTimeout().toSeconds());
        claimLoop.stop();
        wakeups.stop();
        workers.shutdown();
        try {
            workers.awaitTermination(config.drainTimeout().toMillis(), TimeUnit.MILLISECONDS);
            completer.awaitFlushed(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<HeldLease> left = new ArrayList<>();
        for (HeldLeases.Held h : leases.all()) {
            if (!h.finished && !h.lost()) {
                left.add(h.lease());
                HeldLeases.markLost(h, "released at shutdown");
            }
        }
        workers.shutdownNow();
        try {
            if (!left.isEmpty()) {
                Set<Long> released;
                leases.writes.lock(); // not beside a renewal tick: see HeldLeases.writes
                try {
                    released = store.releaseHeld(config.nodeId(), left, "node " + config.nodeId() + " shutting down");
                } finally {
                    leases.writes.unlock();
                }
                log.info("dispatcher: node={} released {} unfinished tasks back to pending", config.nodeId(), released.size());
            }
        } catch (RuntimeException e) {
            log.warn("dispatcher: releasing {} tasks failed ({}); the reaper will requeue them", left.size(), e.getMessage());
        }
        completer.stop(5_000);
        renewer.stop();
        reaper.stop();
        pruner.stop();
        gauges.stop();
        unhandledKinds.stop();
        timeouts.shutdownNow();
        try {
            if (registered) nodes.markStopped(config.nodeId(), incarnation);
        } catch (RuntimeException e) {
            log.warn("dispatcher: marking node {} stopped failed: {}", config.nodeId(), e.getMessage());
        }
        registered = false;
        if (ownsDatabase) db.close();
        log.info("dispatcher: node={} stopped", config.nodeId());
    }

    /**
     * Stops every thread at once and writes nothing more, as a crash would (tests, the chaos run):
     * held leases stay RUNNING in the database for the reaper or the next incarnation.
     */
    public void halt() {
        if (!started.get() || !stopped.compareAndSet(false, true)) return;
        registered = false;
        // null checks: halt() also cleans up after a start() that failed halfway
        if (claimLoop != null) claimLoop.stop();
        if (completer != null) completer.halt();
        for (HeldLeases.Held h : leases.all()) HeldLeases.markLost(h, "halted");
        if (workers != null) workers.shutdownNow();
        if (renewer != null) renewer.stop();
        if (reaper != null) reaper.stop();
        if (pruner != null) pruner.stop();
        if (gauges != null) gauges.stop();
        if (unhandledKinds != null) unhandledKinds.stop();
        if (wakeups != null) wakeups.stop();
        if (timeouts != null) timeouts.shutdownNow();
        if (ownsDatabase) db.close();
    }

    @Override
    public void close() {
        stop();
    }

    public String nodeId() {
        return config.nodeId();
    }

    /**
     * Null when this node is ready (registered, its database reachable, the schema at this build's
     * version), else why not: what {@code /health/ready} and the Spring Boot health contributor answer.
     */
    public String readinessProblem() {
        if (!registered()) return "node not registered";
        try (java.sql.Connection c = db.dataSource().getConnection()) {
            if (!c.isValid(2)) return "database not reachable";
        } catch (Exception e) {
            return "database not reachable: " + e.getClass().getSimpleName();
        }
        try {
            db.requireCurrentSchema();
        } catch (RuntimeException e) {
            return e.getMessage();
        }
        return null;
    }

    public UUID incarnation() {
        return incarnation;
    }

    public boolean registered() {
        return registered;
    }

    /** Whether the LISTEN connection is up: inserts wake this node at once (else it polls). */
    public boolean listening() {
        Wakeups w = wakeups;
        return w != null && w.listening();
    }

    /** Tasks whose lease this node holds now (running, or finished and not yet written). */
    public int held() {
        return leases.size();
    }

    public StartupRecovery.Result recovery() {
        return recovery;
    }

    public Database database() {
        return db;
    }

    public DispatchMetrics metrics() {
        return metrics;
    }

    public DispatcherConfig config() {
        return config;
    }

    /** Runs one renewal tick now (tests, and the renew benchmark). */
    public void renewNow() {
        renewer.runOnce();
    }

    /** Runs one reaper sweep now. */
    public Reaper.Result reapNow() {
        return reaper.runOnce();
    }
}

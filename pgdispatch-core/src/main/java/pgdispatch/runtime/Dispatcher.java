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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.api.CompensatingHandler;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.StuckPolicy;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.maintenance.PeriodicService;
import pgdispatch.maintenance.Pruner;
import pgdispatch.maintenance.Reaper;
import pgdispatch.maintenance.Scheduler;
import pgdispatch.maintenance.StartupRecovery;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Database;
import pgdispatch.store.HeldLease;
import pgdispatch.store.Mutant;
import pgdispatch.store.NodeStore;
import pgdispatch.store.LimitStore;
import pgdispatch.store.QueueStore;
import pgdispatch.store.Schedule;
import pgdispatch.store.ScheduleStore;
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
    /** How often the cluster-wide gauges are refreshed while something reads them. */
    public static final Duration DEFAULT_GAUGE_INTERVAL = Duration.ofSeconds(15);

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
    private final Health.Bounds bounds;
    /**
     * The lifecycle, one state at a time, guarded by {@code lifecycle}: NEW -start-> STARTING -> RUNNING
     * -stop-> STOPPING -> STOPPED; stop or halt from NEW goes straight to STOPPED (closing the pool it
     * opened); a stop or halt during STARTING is recorded and honoured by start() at its next step, and
     * returns once start() has given up; a second stop waits for the first to finish.
     */
    private final Object lifecycle = new Object();
    private State state = State.NEW;
    private boolean stopRequested;
    private boolean haltRequested;
    /** Set once a worker may no longer start a buffered task: the drain has begun (or a halt). */
    private volatile boolean draining;
    private volatile boolean registered;
    private volatile String reportedHealth = "";
    private UUID incarnation;
    private WorkerPool workers;
    private ScheduledExecutorService timeouts;
    private Completer completer;
    private LeaseRenewer renewer;
    private Wakeups wakeups;
    private ClaimLoop claimLoop;
    private Reaper reaper;
    private Pruner pruner;
    private volatile Scheduler scheduler; // volatile: the wake-up thread may hear a change before it exists
    private final List<Schedule> schedules;
    private PeriodicService gauges;
    private PeriodicService unhandledKinds;
    private final Duration unhandledInterval;
    private final Duration gaugeInterval;
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
        this.gaugeInterval = b.gaugeInterval;
        this.schedules = List.copyOf(b.schedules.values());
        this.store = new TaskStore(db);
        this.nodes = new NodeStore(db);
        this.bounds = Health.Bounds.of(config.renewInterval(), config.pollInterval());
    }

    /** Where a dispatcher is in its life; see {@link Dispatcher#state()}. */
    public enum State {
        /** Built, not started: holds only its connection pool. */
        NEW,
        /** start() is running: schema check, registration, recovery, threads. */
        STARTING,
        /** Claiming and working. */
        RUNNING,
        /** stop() is draining and releasing. */
        STOPPING,
        /** Stopped (gracefully or halted) or start() failed: no thread runs, the own pool is closed. */
        STOPPED;

        String word() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Thrown inside start() when a stop or halt was asked for meanwhile: start() then cleans up and returns. */
    private static final class StartCancelled extends RuntimeException {
        StartCancelled() {
            super("stop requested while starting", null, false, false);
        }
    }

    public State state() {
        synchronized (lifecycle) {
            return state;
        }
    }

    private void moveTo(State next) {
        synchronized (lifecycle) {
            state = next;
            lifecycle.notifyAll();
        }
    }

    /** Called between the steps of start(): gives up when a stop or halt came meanwhile. */
    private void checkCancelled() {
        synchronized (lifecycle) {
            if (stopRequested || haltRequested) throw new StartCancelled();
        }
    }

    /** Waits, holding {@code lifecycle}, until the state is no longer {@code s}; false when interrupted. */
    private boolean awaitLeaving(State s) {
        while (state == s) {
            try {
                lifecycle.wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
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
        private Duration gaugeInterval = DEFAULT_GAUGE_INTERVAL;
        private final Map<String, Schedule> schedules = new LinkedHashMap<>();

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

        /**
         * How often the cluster-wide gauges are refreshed while something reads the meters (default 15 s;
         * tests shorten it).
         */
        public Builder gaugeInterval(Duration every) {
            if (every == null || every.isNegative() || every.isZero()) {
                throw new IllegalArgumentException("gaugeInterval must be > 0, got " + every);
            }
            this.gaugeInterval = every;
            return this;
        }

        /** How often the node looks for pending tasks whose kind no live node handles (tests shorten it). */
        public Builder unhandledKindsInterval(Duration every) {
            this.unhandledInterval = every;
            return this;
        }

        /**
         * A recurring task declared in code, stored at {@link #start()} (ScheduleStore.upsert): created
         * enabled when new, else brought to this definition; its {@code enabled} flag is never changed
         * here, so a schedule an operator disabled stays disabled across deployments ({@code schedules
         * enable} turns it back on). A schedule dropped from the code is left as stored ({@code schedules
         * remove} deletes it). Every node runs the scheduler, whether it declares schedules or not.
         */
        public Builder schedule(Schedule s) {
            if (schedules.putIfAbsent(s.name(), s) != null) {
                throw new IllegalArgumentException("two schedules named '" + s.name() + "'");
            }
            return this;
        }

        public Builder schedules(Iterable<Schedule> all) {
            for (Schedule s : all) schedule(s);
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

    /**
     * Starts the node; returns once it is claiming. Refuses when the schema or the node id is not ours.
     * A {@link #stop()} or {@link #halt()} called meanwhile makes it give up at its next step: it then
     * returns with the node {@link State#STOPPED}, having started no claim.
     */
    public Dispatcher start() throws InterruptedException {
        synchronized (lifecycle) {
            if (state != State.NEW) {
                throw new IllegalStateException("node " + config.nodeId() + " cannot start: it is " + state.word());
            }
            state = State.STARTING;
        }
        try {
            startParts();
        } catch (StartCancelled e) {
            boolean graceful;
            synchronized (lifecycle) {
                graceful = !haltRequested;
            }
            log.info("dispatcher: node={} {} while starting: no claim was made", config.nodeId(),
                    graceful ? "stopped" : "halted");
            if (graceful) stopParts();
            else haltParts();
            moveTo(State.STOPPED);
            return this;
        } catch (RuntimeException | InterruptedException | Error e) {
            haltParts(); // stop what did start (threads, own pool); the caller sees the real cause, not a follow-up error
            moveTo(State.STOPPED);
            throw e;
        }
        synchronized (lifecycle) {
            if (stopRequested || haltRequested) {
                // asked during the last step: the waiting stop()/halt() carries on from RUNNING
                log.info("dispatcher: node={} started and is asked to stop at once", config.nodeId());
            }
            state = State.RUNNING;
            lifecycle.notifyAll();
        }
        return this;
    }

    private void startParts() throws InterruptedException {
        log.info("dispatcher: node={} configuration {}", config.nodeId(), config.describe());
        if (Mutant.ACTIVE != Mutant.NONE) {
            log.error("dispatcher: node={} runs the seeded bug {}={} (a mutation check; never in production)", config.nodeId(),
                    Mutant.PROPERTY, Mutant.ACTIVE.label());
        }
        db.checkSchema();
        checkCancelled();
        register();
        checkCancelled();
        recovery = new StartupRecovery(new StartupRecovery.Config(config.nodeId(), config.maxRequeue(),
                StartupRecovery.DEFAULT_BATCH), store, metrics).runOnce();

        ScheduleStore scheduleStore = new ScheduleStore(db.dataSource());
        for (Schedule s : schedules) {
            ScheduleStore.Upsert u = scheduleStore.upsert(s, "code:" + config.nodeId());
            if (u != ScheduleStore.Upsert.UNCHANGED) log.info("dispatcher: schedule={} {} ({})", s.name(),
                    u.name().toLowerCase(java.util.Locale.ROOT), s.timing());
        }

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
        completer = new Completer(config.nodeId(), store::writeOutcomes, leases, metrics, () -> {
            ClaimLoop c = claimLoop;
            if (c != null) c.written();
        });
        completer.start();
        TaskExecution.Node execution = new TaskExecution.Node(config.nodeId(), store, completer, timeouts, retryPolicy,
                metrics, () -> draining, config.maxResultBytes(), workers);
        renewer = new LeaseRenewer(config.nodeId(), incarnation.toString(), config.renewInterval(), store, leases,
                stuckRules(), metrics, this::onRegistrationLost, this::reportHealth);
        renewer.start();
        Set<String> compensatingKinds = new HashSet<>();
        for (TaskHandler h : handlers.values()) if (CompensatingHandler.declaredBy(h)) compensatingKinds.add(h.kind());
        claimLoop = new ClaimLoop(config.nodeId(), config.queues(), leaseByKind, compensatingKinds, config.maxRequeue(),
                config.pollInterval(), config.concurrency(), claimBatch, config.maxPayloadBytes(), store, leases, metrics, workers,
                h -> new TaskExecution(h, handlers.get(h.task.kind()), execution, nanos -> claimLoop.slotFreed(nanos)),
                () -> wakeups != null && wakeups.listening(), new LimitStore(db.dataSource()));
        wakeups = new Wakeups(config.databaseUrl(), config.socketTimeout(), new HashSet<>(config.queues()), this::onNotification);
        wakeups.start();
        checkCancelled(); // the last moment before claims begin: a stop from here on finds a claim loop to stop
        claimLoop.start();
        // its own rows only while its own renewal is current: see Reaper.Config (issue 11 item 5)
        reaper = new Reaper(new Reaper.Config(Reaper.intervalFor(config.renewInterval()), config.stale(), config.nodeTimeout(),
                config.maxRequeue(), config.reapBatch(), config.nodeId(), config.renewInterval()), store, metrics);
        reaper.start();
        pruner = new Pruner(new Pruner.Config(Pruner.DEFAULT_INTERVAL, config.retention(), Pruner.DEFAULT_BATCH), store, metrics);
        pruner.start();
        scheduler = new Scheduler(Scheduler.Config.defaults(config.retention(), config.nodeId()), scheduleStore, metrics,
                this::listening);
        scheduler.start();
        TaskQueries queries = new TaskQueries(db);
        QueueStore queueStore = new QueueStore(db.dataSource());
        StuckRules rules = stuckRules();
        LimitStore limitStore = new LimitStore(db.dataSource());
        java.util.concurrent.atomic.AtomicReference<Long> lastEvent = new java.util.concurrent.atomic.AtomicReference<>();
        metrics.dependencies(0, 0); // the series exist from the start
        java.util.concurrent.atomic.AtomicBoolean firstGauges = new java.util.concurrent.atomic.AtomicBoolean(true);
        gauges = new PeriodicService("gauges", gaugeInterval, () -> {
            // five cluster-wide queries: only when something read the meters since the last refresh (a scrape,
            // a push registry), and once at start so the series exist; a node nobody scrapes sends none
            if (!firstGauges.getAndSet(false) && !metrics.readSinceLastLook()) return;
            metrics.queues(queries.depthAndLag());
            TaskQueries.DependencyEvents d = queries.dependencyEventsAfter(lastEvent.get());
            metrics.dependencies(d.released(), d.cancelled());
            lastEvent.set(d.lastEventId());
            metrics.leases(queries.leaseStats(config.renewInterval(), config.nodeTimeout(), rules));
            metrics.pausedQueues(Set.copyOf(queueStore.paused()));
            Map<String, double[]> byKey = new LinkedHashMap<>();
            for (LimitStore.Limit l : limitStore.list()) byKey.put(l.key(), new double[] {l.maxRunning(), l.running()});
            metrics.limits(byKey);
        });
        gauges.start();
        unhandledKinds = new PeriodicService("unhandled-kinds", unhandledInterval, () -> warnUnhandled(queries));
        unhandledKinds.start();
        metrics.health(new HealthFigures());
        log.info("dispatcher: node={} incarnation={} started: queues={} kinds={} concurrency={} lease={}s renew={}s",
                config.nodeId(), incarnation, config.queues(), handlers.keySet(), config.concurrency(),
                config.lease().toSeconds(), config.renewInterval().toSeconds());
    }

    /** What a notification on pgdispatch_wakeup means (null: the LISTEN connection was (re)opened). */
    private void onNotification(String payload) {
        Scheduler s = scheduler;
        if (payload == null) {
            claimLoop.limitsChanged();
            if (s != null) s.wake();
        } else if (payload.equals(Wakeups.SCHEDULES)) {
            if (s != null) s.wake();
        } else if (payload.equals(Wakeups.LIMITS)) {
            claimLoop.limitsChanged();
        } else {
            claimLoop.wake();
        }
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
        var ok = NodeRegistration.register(nodes, config, new ArrayList<>(handlers.keySet()), VERSION, force,
                this::checkCancelled);
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

    /**
     * Readiness: {@link Health#READY}, or every part that is not doing its work and why: the lifecycle
     * (not running), the registration (another incarnation took the node id), the claim loop, the
     * renewer, the completer and the scheduler (each against its {@link Health.Bounds}), and the database (a
     * connection answers within 2 s; the schema is still this build's, checked by one query, Flyway
     * only when the history changed). {@code /health/ready} answers 503 with {@link Health#reason()}.
     */
    public Health health() {
        List<Health.Problem> problems = new ArrayList<>(partProblems());
        if (state() == State.RUNNING) {
            try (var c = db.dataSource().getConnection()) {
                if (!c.isValid(2)) problems.add(new Health.Problem(Health.Part.DATABASE, "not reachable (no answer within 2s)"));
                else db.checkSchema();
            } catch (Database.SchemaMismatchException e) {
                problems.add(new Health.Problem(Health.Part.DATABASE, e.getMessage()));
            } catch (Exception e) {
                problems.add(new Health.Problem(Health.Part.DATABASE, "not reachable: " + e.getClass().getSimpleName()
                        + (e.getMessage() == null ? "" : ": " + e.getMessage())));
            }
        }
        return problems.isEmpty() ? Health.READY : new Health(problems);
    }

    /** The problems of the node's own parts, without asking the database (metrics, the stored health). */
    private List<Health.Problem> partProblems() {
        State s = state();
        if (s != State.RUNNING) return List.of(new Health.Problem(Health.Part.LIFECYCLE, "node is " + s.word()));
        List<Health.Problem> p = new ArrayList<>();
        if (!registered) {
            p.add(new Health.Problem(Health.Part.REGISTRATION, "node id " + config.nodeId()
                    + " was taken by another incarnation; this one stops"));
        }
        long now = System.nanoTime();
        Duration claimAge = Duration.ofNanos(now - claimLoop.lastCycleNanos());
        if (claimAge.compareTo(bounds.claimer()) > 0) {
            p.add(new Health.Problem(Health.Part.CLAIMER, "no claim cycle completed for " + Health.seconds(claimAge)
                    + " (bound " + Health.seconds(bounds.claimer()) + ")"));
        }
        Duration renewAge = Duration.ofNanos(now - renewer.lastSuccessNanos());
        int failures = renewer.failuresInARow();
        if (failures > 0) {
            p.add(new Health.Problem(Health.Part.RENEWER, "last renewal failed (" + failures + " in a row, last success "
                    + Health.seconds(renewAge) + " ago): " + renewer.lastError()));
        } else if (renewAge.compareTo(bounds.renewer()) > 0) {
            p.add(new Health.Problem(Health.Part.RENEWER, "no renewal completed for " + Health.seconds(renewAge)
                    + " (bound " + Health.seconds(bounds.renewer()) + "; other nodes count this one dead after "
                    + "TASK_NODE_TIMEOUT_S=" + config.nodeTimeout().toSeconds() + ")"));
        }
        Duration late = scheduler.overdue();
        if (late.compareTo(bounds.scheduler()) > 0) {
            String failure = scheduler.lastFailure();
            p.add(new Health.Problem(Health.Part.SCHEDULER, "no run completed for " + Health.seconds(late) + " after it was due"
                    + " (bound " + Health.seconds(bounds.scheduler()) + ")" + (failure == null ? "" : "; last run failed: " + failure)));
        }
        long oldest = completer.oldestUnwrittenNanos();
        if (oldest != 0) {
            Duration age = Duration.ofNanos(now - oldest);
            if (age.compareTo(bounds.completer()) > 0) {
                p.add(new Health.Problem(Health.Part.COMPLETER, completer.unwritten() + " outcomes unwritten, the oldest for "
                        + Health.seconds(age) + " (bound " + Health.seconds(bounds.completer()) + ")"));
            }
        }
        return p;
    }

    /**
     * After each successful renewal: stores what readiness says on the node row when it changed, so
     * {@code pgdispatch status} shows it for every node (the database part is left out: it just answered).
     */
    private void reportHealth() {
        List<Health.Problem> p = partProblems();
        String now = p.isEmpty() ? null : new Health(p).reason();
        if (java.util.Objects.equals(now, reportedHealth)) return;
        try {
            nodes.reportHealth(config.nodeId(), incarnation, now);
            reportedHealth = now;
        } catch (RuntimeException e) {
            log.warn("dispatcher: storing the health of node {} failed ({}); next tick retries", config.nodeId(), e.getMessage());
        }
    }

    /** What the health gauges read at each scrape. */
    private final class HealthFigures implements DispatchMetrics.HealthFigures {
        @Override
        public double claimerCycleAgeSeconds() {
            return (System.nanoTime() - claimLoop.lastCycleNanos()) / 1e9;
        }

        @Override
        public double renewerSuccessAgeSeconds() {
            return (System.nanoTime() - renewer.lastSuccessNanos()) / 1e9;
        }

        @Override
        public double renewerFailuresInARow() {
            return renewer.failuresInARow();
        }

        @Override
        public double completerOldestUnwrittenAgeSeconds() {
            long oldest = completer.oldestUnwrittenNanos();
            return oldest == 0 ? 0 : (System.nanoTime() - oldest) / 1e9;
        }

        @Override
        public double completerUnwritten() {
            return completer.unwritten();
        }

        @Override
        public boolean problem(String part) {
            for (Health.Problem p : partProblems()) {
                if (p.part().tag().equals(part)) return true;
            }
            return false;
        }

        @Override
        public List<String> parts() {
            return java.util.Arrays.stream(Health.Part.values()).filter(x -> x != Health.Part.DATABASE)
                    .map(Health.Part::tag).toList();
        }
    }

    private void onRegistrationLost() {
        registered = false;
        Thread.ofPlatform().daemon().name("pgdispatch-stop").start(this::stop);
    }

    /**
     * Graceful stop (SIGTERM): no new claims; running tasks get up to {@code TASK_DRAIN_S} to finish;
     * what is still held then is released back to pending without charging an attempt; the node is
     * marked stopped. Idempotent: a second call returns once the first has finished. During start() it
     * makes start() give up at its next step and returns once it has; before start() it closes the pool.
     */
    public void stop() {
        synchronized (lifecycle) {
            while (state != State.RUNNING) {
                switch (state) {
                    case NEW -> {
                        state = State.STOPPED;
                        lifecycle.notifyAll();
                        if (ownsDatabase) db.close(); // built, never started: the pool it opened is all it holds
                        return;
                    }
                    case STARTING -> {
                        stopRequested = true;
                        if (!awaitLeaving(State.STARTING)) return;
                    }
                    // another stop() is draining: return once it has finished, not before
                    case STOPPING -> {
                        if (!awaitLeaving(State.STOPPING)) return;
                    }
                    default -> {
                        return; // STOPPED
                    }
                }
            }
            state = State.STOPPING; // this call drains; any other waits for it
            lifecycle.notifyAll();
        }
        try {
            stopParts();
        } finally {
            moveTo(State.STOPPED);
        }
    }

    /** The graceful stop of whatever start() created (a start cancelled part-way created less). */
    private void stopParts() {
        draining = true;
        log.info("dispatcher: node={} stopping: draining {} running tasks for up to {}s", config.nodeId(), leases.size(),
                config.drainTimeout().toSeconds());
        if (claimLoop != null) claimLoop.stop();
        if (wakeups != null) wakeups.stop();
        if (workers != null) {
            workers.shutdown();
            try {
                workers.awaitTermination(config.drainTimeout().toMillis(), TimeUnit.MILLISECONDS);
                completer.awaitFlushed(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        List<HeldLease> left = new ArrayList<>();
        for (HeldLeases.Held h : leases.all()) {
            if (!h.finished && !h.lost()) {
                left.add(h.lease());
                HeldLeases.markLost(h, "released at shutdown");
            }
        }
        if (workers != null) workers.shutdownNow();
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
        if (completer != null) completer.stop(5_000);
        if (renewer != null) renewer.stop();
        if (reaper != null) reaper.stop();
        if (pruner != null) pruner.stop();
        if (scheduler != null) scheduler.stop();
        if (gauges != null) gauges.stop();
        if (unhandledKinds != null) unhandledKinds.stop();
        if (timeouts != null) timeouts.shutdownNow();
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
     * held leases stay RUNNING in the database for the reaper or the next incarnation. During start()
     * it makes start() give up at its next step; during a graceful stop it waits for that to finish.
     */
    public void halt() {
        synchronized (lifecycle) {
            while (true) {
                switch (state) {
                    case NEW -> {
                        state = State.STOPPED;
                        lifecycle.notifyAll();
                        if (ownsDatabase) db.close();
                        return;
                    }
                    case STARTING -> {
                        haltRequested = true;
                        if (!awaitLeaving(State.STARTING)) return;
                        continue;
                    }
                    case STOPPING -> {
                        if (!awaitLeaving(State.STOPPING)) return;
                        continue;
                    }
                    case STOPPED -> {
                        return;
                    }
                    case RUNNING -> {
                        state = State.STOPPED;
                        lifecycle.notifyAll();
                    }
                }
                break;
            }
        }
        haltParts();
    }

    /** Stops every thread start() created, writing nothing (also the clean-up after a failed start). */
    private void haltParts() {
        draining = true;
        registered = false;
        // null checks: this also cleans up after a start() that failed or was cancelled halfway
        if (claimLoop != null) claimLoop.stop();
        if (completer != null) completer.halt();
        for (HeldLeases.Held h : leases.all()) HeldLeases.markLost(h, "halted");
        if (workers != null) workers.shutdownNow();
        if (renewer != null) renewer.stop();
        if (reaper != null) reaper.stop();
        if (pruner != null) pruner.stop();
        if (scheduler != null) scheduler.stop();
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
     * Null when {@link #health()} is ready, else its reasons joined ("part: reason; ..."): what the
     * Spring Boot health contributor answers.
     */
    public String readinessProblem() {
        return health().reason(); // one model: the same problems /health/ready gives (issue 11 item 8)
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

    /** Runs one scheduler pass now (tests). */
    public Scheduler.Result scheduleNow() {
        return scheduler.runOnce();
    }

    /** How long until this node's scheduler runs next, unless a schedule change wakes it (tests). */
    public Duration schedulerNextRunIn() {
        return scheduler.nextRunIn();
    }

    /** Runs one reaper sweep now. */
    public Reaper.Result reapNow() {
        return reaper.runOnce();
    }
}

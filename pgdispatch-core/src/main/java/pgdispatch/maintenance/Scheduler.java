package pgdispatch.maintenance;

import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Schedule;
import pgdispatch.store.ScheduleStore;
import pgdispatch.store.ScheduleStore.Stored;

/**
 * Enqueues the tasks of recurring schedules. Runs on every node, with no leader: each step of a schedule
 * is one transaction that moves its {@code next_fire_at} by compare-and-set and enqueues the task(s) of
 * the fire time(s) it passes ({@link ScheduleStore#fire}), so of any number of nodes exactly one enqueues
 * each fire time, and a node that dies mid-way leaves either the whole step or none of it. The service
 * and the {@code schedules} command share {@link #runOnce()}.
 *
 * <p>A fire time up to {@code lateAfter} (60 s) in the past is on time and enqueued. Older ones were
 * missed (no node ran, or the database was down): the schedule's policy decides, in one step per up to
 * {@link #MAX_MISSED_PER_STEP} missed times: {@code skip} enqueues none, {@code backfill N} the latest N
 * (oldest first, recorded as {@code backfilled}); the rest are recorded as one {@code skipped} row with
 * the first and last skipped time and their number. All times are the database's.
 *
 * <p>Between runs it sleeps until the next fire time, at most {@code notifiedWait} (60 s) while this node
 * hears of schedule changes (its LISTEN connection is up: V13_5's trigger sends {@code :schedules} on
 * {@code pgdispatch_wakeup} for a new, re-enabled, re-timed or brought-forward schedule, and
 * {@link #wake()} ends the sleep), else at most {@code maxWait} (2 s), as it did before the trigger. An
 * idle node without due schedules so costs one statement a minute. {@link #overdue()} tells readiness
 * whether a run that was due has not completed.
 */
public final class Scheduler {
    private static final Logger log = LoggerFactory.getLogger(Scheduler.class);

    /**
     * The longest a node waits between runs while it does not hear of schedule changes (LISTEN down): a
     * schedule added or changed elsewhere is seen within this. Also the retry delay after a failed run.
     */
    public static final Duration DEFAULT_MAX_WAIT = Duration.ofSeconds(2);
    /**
     * The longest a node waits between runs while it hears of schedule changes: a safety net for a lost
     * notification; the next fire time, or a notification, ends the wait sooner.
     */
    public static final Duration DEFAULT_NOTIFIED_WAIT = Duration.ofSeconds(60);
    private static final Duration MIN_WAIT = Duration.ofMillis(10);
    /** Fire times older than this are missed (an outage), not late: wider than any pause of a live node's scheduler. */
    public static final Duration DEFAULT_LATE_AFTER = Duration.ofSeconds(60);
    /** Missed fire times looked at per step (a per-second schedule after a day's outage takes a few steps). */
    public static final int MAX_MISSED_PER_STEP = 100_000;
    /** Steps per schedule and run: a run ends, and the next goes on, rather than one schedule holding the loop. */
    public static final int MAX_STEPS_PER_RUN = 1000;

    /**
     * Settings; the compact constructor rejects impossible values. {@code node}: recorded in the history;
     * {@code maxWait} and {@code notifiedWait}: the longest sleep without and with notifications.
     */
    public record Config(Duration maxWait, Duration notifiedWait, Duration lateAfter, Duration retention, String node) {
        public Config {
            if (maxWait.isZero() || maxWait.isNegative()) throw new IllegalArgumentException("Scheduler.Config.maxWait must be > 0, got " + maxWait);
            if (notifiedWait.compareTo(maxWait) < 0) {
                throw new IllegalArgumentException("Scheduler.Config.notifiedWait must be >= maxWait=" + maxWait + ", got " + notifiedWait);
            }
            if (lateAfter.compareTo(Duration.ofSeconds(1)) < 0) throw new IllegalArgumentException("Scheduler.Config.lateAfter must be >= 1s, got " + lateAfter);
            if (retention.isZero() || retention.isNegative()) throw new IllegalArgumentException("Scheduler.Config.retention must be > 0, got " + retention);
        }

        public static Config defaults(Duration retention, String node) {
            return new Config(DEFAULT_MAX_WAIT, DEFAULT_NOTIFIED_WAIT, DEFAULT_LATE_AFTER, retention, node);
        }
    }

    /**
     * One run: tasks enqueued on time, by backfill and their sum; missed fire times skipped; steps lost to
     * another node; fire times whose task existed already; schedules that failed (bad row, database error);
     * how long until the next fire time (capped by notifiedWait; maxWait after an error).
     */
    public record Result(int fired, int backfilled, long skipped, int lostRaces, int conflicts, int errors, Duration untilNext) {
        public int enqueued() {
            return fired + backfilled;
        }
    }

    private final Config config;
    private final ScheduleStore store;
    private final DispatchMetrics metrics;
    private final PeriodicService service;
    /** The last error logged per schedule, so a broken row logs once per distinct message, not every run. */
    private final Map<String, String> lastError = new ConcurrentHashMap<>();
    private final BooleanSupplier notified;
    private volatile Duration wait;
    /**
     * {@link System#nanoTime()} by which the next run should have completed: the end of the last completed
     * run plus its sleep, or the time of a wake-up; a failed run leaves it where it was.
     */
    private volatile long dueNanos = System.nanoTime();
    private volatile String lastFailure;

    /** A scheduler that never hears of changes (sleeps at most {@code maxWait}): the {@code schedules} command, tests. */
    public Scheduler(Config config, ScheduleStore store, DispatchMetrics metrics) {
        this(config, store, metrics, () -> false);
    }

    /** {@code notified}: whether this node hears of schedule changes now (its LISTEN connection is up). */
    public Scheduler(Config config, ScheduleStore store, DispatchMetrics metrics, BooleanSupplier notified) {
        this.config = config;
        this.store = store;
        this.metrics = metrics;
        this.notified = notified;
        this.wait = config.maxWait(); // the first run within maxWait of the start: code-declared schedules are placed
        this.service = new PeriodicService("scheduler", config.notifiedWait(), () -> {
            try {
                runOnce();
                lastFailure = null;
            } catch (RuntimeException e) {
                metrics.schedulerError();
                wait = config.maxWait();
                lastFailure = String.valueOf(e.getMessage());
                throw e;
            }
        }, this::sleep);
    }

    /**
     * The pause before the next run: until the next fire time, capped by what this node hears of changes.
     * After a completed run the next is due at its end; after a failed one the due time stays behind.
     */
    private Duration sleep() {
        Duration w = wait;
        if (!notified.getAsBoolean() && w.compareTo(config.maxWait()) > 0) w = config.maxWait();
        if (lastFailure == null) dueNanos = System.nanoTime() + w.toNanos();
        return w;
    }

    /** A schedule changed (a notification): run now instead of at the end of the sleep. */
    public void wake() {
        long now = System.nanoTime();
        if (dueNanos - now > 0) dueNanos = now;
        service.wake();
    }

    /**
     * How long a run that was due has not completed (stuck in a statement, or failing), or
     * {@link Duration#ZERO}; readiness compares it with its bound.
     */
    public Duration overdue() {
        long late = System.nanoTime() - dueNanos;
        return late > 0 ? Duration.ofNanos(late) : Duration.ZERO;
    }

    /** How long until the next run is due (negative: overdue); tests see the scheduler asleep. */
    public Duration nextRunIn() {
        return Duration.ofNanos(dueNanos - System.nanoTime());
    }

    /** The message of the last run's failure, or null when it completed. */
    public String lastFailure() {
        return lastFailure;
    }

    /** Every due schedule, step by step, until none is due. */
    public Result runOnce() {
        ScheduleStore.Due due = store.due();
        Tally t = new Tally();
        for (Stored row : due.schedules()) {
            try {
                run(row, due.now(), t);
                if (lastError.remove(row.name()) != null) log.info("scheduler: schedule={} fires again", row.name());
            } catch (RuntimeException e) {
                t.errors++;
                metrics.schedulerError();
                String msg = String.valueOf(e.getMessage());
                if (!msg.equals(lastError.put(row.name(), msg))) {
                    log.warn("scheduler: schedule={} failed, retried at each run: {}", row.name(), msg);
                }
            }
        }
        // nothing ran: the due read already knows the next fire time (no second statement on an idle node)
        Duration until = (due.schedules().isEmpty() ? due.untilLater() : store.untilNextFire()).orElse(config.notifiedWait());
        if (until.compareTo(config.notifiedWait()) > 0) until = config.notifiedWait();
        // a schedule that failed is still due: retried after maxWait, not in a busy loop
        if (t.errors > 0) until = config.maxWait();
        if (until.compareTo(MIN_WAIT) < 0) until = MIN_WAIT;
        wait = until;
        Result r = new Result(t.fired, t.backfilled, t.skipped, t.lost, t.conflicts, t.errors, until);
        if (r.backfilled() > 0 || r.skipped() > 0 || r.conflicts() > 0) {
            log.info("scheduler: fired={} backfilled={} skipped={} conflicts={}", r.fired(), r.backfilled(), r.skipped(), r.conflicts());
        }
        return r;
    }

    private static final class Tally {
        int fired, backfilled, lost, conflicts, errors;
        long skipped;
    }

    private void run(Stored row, OffsetDateTime now, Tally t) {
        Schedule s = row.definition();
        Schedule.Recurrence times = s.recurrence();
        Instant dbNow = now.toInstant();
        Instant cutoff = dbNow.minus(config.lateAfter());
        for (int steps = 0; steps < MAX_STEPS_PER_RUN; steps++) {
            if (row.nextFireAt() == null) {
                Instant first = times.next(dbNow);
                if (first == null) throw new IllegalStateException("cron " + s.cron() + " has no fire time after " + dbNow);
                store.place(row.name(), first);
                return; // placed after now: nothing is due
            }
            Instant next = row.nextFireAt().toInstant();
            if (next.isAfter(dbNow)) return;
            ScheduleStore.Step step;
            if (!next.isBefore(cutoff)) {
                step = new ScheduleStore.Step(row.name(), row.nextFireAt(), following(times, next, s), List.of(next), "fired",
                        null, null, 0, config.node(), config.retention());
            } else {
                step = missed(row, s, times, next, cutoff);
            }
            Optional<ScheduleStore.Fired> done = store.fire(step);
            if (done.isEmpty()) {
                t.lost++;
                Optional<Stored> again = store.find(row.name());
                if (again.isEmpty() || !again.get().enabled()) return;
                row = again.get();
                continue;
            }
            int created = done.get().taskIds().size();
            if (step.action().equals("fired")) t.fired += created;
            else t.backfilled += created;
            t.skipped += step.skippedCount();
            t.conflicts += done.get().conflicts();
            metrics.scheduleFired(row.name(), step.action(), created);
            if (step.skippedCount() > 0) {
                metrics.scheduleSkipped(row.name(), step.skippedCount());
                log.info("scheduler: schedule={} missed fire times from {} to {}: skipped={} backfilled={}", row.name(),
                        step.skippedFirst(), step.skippedLast(), step.skippedCount(), created);
            }
            row = new Stored(row.name(), row.cron(), row.everySeconds(), row.timeZone(), row.kind(), row.payloadJson(),
                    row.queue(), row.priority(), row.maxAttempts(), true, row.missed(), row.backfillMax(),
                    step.next().atOffset(java.time.ZoneOffset.UTC), row.lastFiredAt(), row.createdAt(), row.updatedAt(),
                    row.changedBy());
        }
    }

    /**
     * The step over missed fire times from {@code first} on: up to {@link #MAX_MISSED_PER_STEP} of them
     * up to {@code cutoff}. When this step reaches the cutoff, the backfill policy enqueues the latest
     * {@code backfillMax} of them; the others (all of them under skip, or in an earlier, full step) are
     * skipped.
     */
    private ScheduleStore.Step missed(Stored row, Schedule s, Schedule.Recurrence times, Instant first, Instant cutoff) {
        int keep = s.missed() == Schedule.Missed.BACKFILL ? s.backfillMax() : 0;
        ArrayDeque<Instant> latest = new ArrayDeque<>();
        Instant skippedFirst = null, skippedLast = null;
        long skipped = 0;
        Instant at = first;
        int seen = 0;
        while (at.isBefore(cutoff) && seen < MAX_MISSED_PER_STEP) {
            latest.addLast(at);
            if (latest.size() > keep) {
                Instant out = latest.removeFirst();
                if (skippedFirst == null) skippedFirst = out;
                skippedLast = out;
                skipped++;
            }
            seen++;
            at = following(times, at, s);
        }
        boolean reachedCutoff = !at.isBefore(cutoff);
        List<Instant> enqueue = new ArrayList<>(latest);
        if (!reachedCutoff) {
            // a full step that did not reach the cutoff: the latest ones are not the outage's latest
            for (Instant i : enqueue) {
                if (skippedFirst == null) skippedFirst = i;
                skippedLast = i;
                skipped++;
            }
            enqueue.clear();
        }
        return new ScheduleStore.Step(row.name(), row.nextFireAt(), at, enqueue, "backfilled", skippedFirst, skippedLast,
                skipped, config.node(), config.retention());
    }

    private static Instant following(Schedule.Recurrence times, Instant after, Schedule s) {
        Instant n = times.next(after);
        if (n == null) throw new IllegalStateException("cron " + s.cron() + " has no fire time after " + after);
        return n;
    }

    public void start() {
        service.start();
    }

    public void stop() {
        service.stop();
    }
}

package pgdispatch.store;

import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * The {@code schedules} rows and their history ({@code schedule_fires}): declared from code, the CLI or
 * plain SQL; fired by every node's {@code Scheduler} through {@link #fire}, whose compare-and-set on
 * {@code next_fire_at} lets exactly one node enqueue each fire time (V12_1).
 */
public final class ScheduleStore {
    private final DSLContext dsl;

    public ScheduleStore(DataSource ds) {
        this.dsl = DSL.using(ds, SQLDialect.POSTGRES);
    }

    /**
     * A schedule as stored. {@code nextFireAt} null: not yet placed (new, timing changed, re-enabled, or
     * disabled); the Scheduler places it at the first fire time after now.
     */
    public record Stored(String name, String cron, Integer everySeconds, String timeZone, String kind, String payloadJson,
                         String queue, int priority, int maxAttempts, boolean enabled, String missed, int backfillMax,
                         OffsetDateTime nextFireAt, OffsetDateTime lastFiredAt, OffsetDateTime createdAt,
                         OffsetDateTime updatedAt, String changedBy) {
        /** The definition, checked by Java's rules: a row inserted by SQL may break one (a cron cron-utils refuses). */
        public Schedule definition() {
            return new Schedule(name, cron, everySeconds == null ? null : Duration.ofSeconds(everySeconds),
                    ZoneId.of(timeZone), kind, payloadJson, queue, priority, maxAttempts, Schedule.Missed.of(missed),
                    backfillMax);
        }

        /** "cron 0 30 2 * * ? Europe/Berlin" or "every 600s". */
        public String timing() {
            return cron != null ? "cron " + cron + " " + timeZone : "every " + everySeconds + "s";
        }

        public String missedPolicy() {
            return missed.equals("backfill") ? "backfill " + backfillMax : "skip";
        }
    }

    /** What the Scheduler reads at the start of a run: the database's clock and the schedules due or unplaced. */
    /** What is due at {@code now} (the database's clock), and how long until the earliest fire time after it (empty: none). */
    public record Due(OffsetDateTime now, List<Stored> schedules, Optional<Duration> untilLater) {}

    /** One row of a schedule's history. */
    public record Fire(long id, String schedule, OffsetDateTime fireAt, String action, Long taskId, OffsetDateTime skippedUntil,
                       Long skippedCount, String nodeId, OffsetDateTime recordedAt) {}

    /**
     * One step of the Scheduler for one schedule: move {@code next_fire_at} from {@code expected} to
     * {@code next}, enqueue a task per time in {@code enqueue} (recorded as {@code action}: fired or
     * backfilled), and record {@code skippedCount} fire times from {@code skippedFirst} to
     * {@code skippedLast} as skipped (0: none).
     */
    public record Step(String schedule, OffsetDateTime expected, Instant next, List<Instant> enqueue, String action,
                       Instant skippedFirst, Instant skippedLast, long skippedCount, String node, Duration retention) {}

    /** What a step did: the tasks it created; {@code conflicts}, fire times whose task existed already (none unless a fire time was reset). */
    public record Fired(List<Long> taskIds, int conflicts) {}

    /** The outcome of a declaration from code (or {@code add --replace}). */
    public enum Upsert { CREATED, UPDATED, UNCHANGED }

    private static final String COLUMNS = "name, cron, every_s, time_zone, kind, payload::text AS payload, queue, priority,"
            + " max_attempts, enabled, missed, backfill_max, next_fire_at, last_fired_at, created_at, updated_at, changed_by";

    /** Every schedule, by name. */
    public List<Stored> list() {
        return dsl.resultQuery("SELECT " + COLUMNS + " FROM schedules ORDER BY name").fetch(ScheduleStore::stored);
    }

    public Optional<Stored> find(String name) {
        return dsl.resultQuery("SELECT " + COLUMNS + " FROM schedules WHERE name = {0}", DSL.val(name))
                .fetchOptional(ScheduleStore::stored);
    }

    /** The enabled schedules whose next fire time has come (by the database's clock) or that are not placed yet. */
    public Due due() {
        // one statement per Scheduler run when nothing is due (the common case): the clock, the due rows
        // (none: one row of NULLs) and the earliest later fire time
        var result = dsl.resultQuery("""
                WITH c AS (SELECT now() AS db_now)
                SELECT c.db_now, (SELECT min(next_fire_at) FROM schedules WHERE enabled AND next_fire_at > c.db_now) AS later, d.*
                  FROM c LEFT JOIN LATERAL (
                       SELECT\s""" + COLUMNS + """
                         FROM schedules WHERE enabled AND (next_fire_at IS NULL OR next_fire_at <= c.db_now)
                        ORDER BY next_fire_at NULLS FIRST, name) d ON true
                """).fetch();
        OffsetDateTime now = result.get(0).get("db_now", OffsetDateTime.class);
        OffsetDateTime later = result.get(0).get("later", OffsetDateTime.class);
        List<Stored> rows = result.stream().filter(r -> r.get("name") != null).map(ScheduleStore::stored).toList();
        return new Due(now, rows, later == null ? Optional.empty() : Optional.of(Duration.between(now, later)));
    }

    /** How long until the earliest next fire time of an enabled schedule, by the database's clock; empty when none. */
    public Optional<Duration> untilNextFire() {
        Record r = dsl.resultQuery("SELECT now() AS now, min(next_fire_at) AS next FROM schedules WHERE enabled").fetchOne();
        OffsetDateTime next = r.get("next", OffsetDateTime.class);
        return next == null ? Optional.empty() : Optional.of(Duration.between(r.get("now", OffsetDateTime.class), next));
    }

    /**
     * unplaced → placed at its first fire time after now (the database's clock), when the CLI adds or
     * enables it (so `list` shows it at once); empty when it was placed already, or is disabled.
     */
    public Optional<OffsetDateTime> placeAfterNow(String name, Schedule.Recurrence times) {
        OffsetDateTime now = dsl.fetchValue(DSL.field("now()", OffsetDateTime.class));
        Instant next = times.next(now.toInstant());
        return next != null && place(name, next) ? Optional.of(next.atOffset(java.time.ZoneOffset.UTC)) : Optional.empty();
    }

    /** unplaced → placed at {@code next}; false when another node placed it first, or it was disabled meanwhile. */
    public boolean place(String name, Instant next) {
        return dsl.execute("UPDATE schedules SET next_fire_at = {1} WHERE name = {0} AND enabled AND next_fire_at IS NULL",
                DSL.val(name), DSL.val(next.atOffset(java.time.ZoneOffset.UTC))) == 1;
    }

    /**
     * One step of a schedule, in one transaction: the compare-and-set of {@code next_fire_at} (from the
     * value the caller read, on an enabled row), then the tasks and the history rows. Empty: the
     * compare-and-set found another value (another node took this step, or an operator changed the
     * schedule) and nothing was written. The tasks are built from the row as the compare-and-set returns
     * it, so an operator's change committed meanwhile is what is enqueued. Each task's run_at is its fire
     * time and its idempotency key {@code schedule:<name>@<fire time in UTC>}; a fire time that has a
     * task already (only when someone set next_fire_at back) is counted as a conflict, not enqueued twice.
     */
    public Optional<Fired> fire(Step s) {
        return dsl.transactionResult(cfg -> {
            DSLContext tx = DSL.using(cfg);
            OffsetDateTime lastFired = s.enqueue().isEmpty() ? null : s.enqueue().getLast().atOffset(java.time.ZoneOffset.UTC);
            Record row = tx.resultQuery("""
                    UPDATE schedules SET next_fire_at = {2}, last_fired_at = coalesce({3}, last_fired_at)
                     WHERE name = {0} AND enabled AND next_fire_at = {1}
                    RETURNING kind, payload::text AS payload, queue, priority, max_attempts
                    """, DSL.val(s.schedule()), DSL.val(s.expected()), DSL.val(s.next().atOffset(java.time.ZoneOffset.UTC)),
                    DSL.val(lastFired, OffsetDateTime.class)).fetchOne();
            if (row == null) return Optional.<Fired>empty();
            List<Long> ids = List.of();
            if (!s.enqueue().isEmpty()) {
                String[] times = s.enqueue().stream().map(Instant::toString).toArray(String[]::new);
                String[] keys = s.enqueue().stream().map(t -> key(s.schedule(), t)).toArray(String[]::new);
                ids = insertTasks(tx, s.schedule(), row, times, keys, s.action(), s.node());
            }
            if (s.skippedCount() > 0) {
                tx.execute("""
                        INSERT INTO schedule_fires (schedule, fire_at, action, skipped_until, skipped_count, node_id)
                        VALUES ({0}, {1}, 'skipped', {2}, {3}, {4})
                        """, DSL.val(s.schedule()), DSL.val(s.skippedFirst().atOffset(java.time.ZoneOffset.UTC)),
                        DSL.val(s.skippedLast().atOffset(java.time.ZoneOffset.UTC)), DSL.val(s.skippedCount()), DSL.val(s.node()));
            }
            tx.execute("DELETE FROM schedule_fires WHERE schedule = {0} AND recorded_at < now() - {1} * interval '1 second'",
                    DSL.val(s.schedule()), DSL.val(s.retention().toSeconds()));
            return Optional.of(new Fired(ids, s.enqueue().size() - ids.size()));
        });
    }

    /** The idempotency key of a schedule's task for one fire time. */
    public static String key(String schedule, Instant fireAt) {
        return "schedule:" + schedule + "@" + fireAt;
    }

    // ON CONFLICT DO NOTHING (no target): the task's idempotency key and the (schedule, fire time) index
    // both refuse a second task for a fire time; such a time is left out, not raised
    private static List<Long> insertTasks(DSLContext tx, String schedule, Record row, String[] times, String[] keys,
                                          String action, String node) {
        return tx.resultQuery("""
                WITH f AS (
                    SELECT f.at, f.key FROM unnest({0}::timestamptz[], {1}::text[]) AS f(at, key)
                ), ins AS (
                    INSERT INTO tasks (queue, kind, payload, priority, max_attempts, run_at, idempotency_key)
                    SELECT {2}, {3}, {4}::jsonb, {5}, {6}, f.at, f.key FROM f ORDER BY f.at
                    ON CONFLICT DO NOTHING
                    RETURNING id, run_at
                )
                INSERT INTO schedule_fires (schedule, fire_at, action, task_id, node_id)
                SELECT {7}, ins.run_at, {8}, ins.id, {9} FROM ins
                ON CONFLICT DO NOTHING
                RETURNING task_id
                """, DSL.val(times), DSL.val(keys), DSL.val(row.get("queue", String.class)), DSL.val(row.get("kind", String.class)),
                DSL.val(row.get("payload", String.class)), DSL.val(row.get("priority", Integer.class)),
                DSL.val(row.get("max_attempts", Integer.class)), DSL.val(schedule), DSL.val(action), DSL.val(node))
                .fetch(r -> r.get(0, Long.class));
    }

    /**
     * Enqueues one task of {@code name} now, outside its timing (which is not changed), recorded as
     * {@code run_now}; works on a disabled schedule too. Empty when there is no such schedule.
     */
    public Optional<Long> runNow(String name, String by) {
        return dsl.resultQuery("""
                WITH s AS (
                    SELECT * FROM schedules WHERE name = {0} FOR SHARE
                ), ins AS (
                    INSERT INTO tasks (queue, kind, payload, priority, max_attempts)
                    SELECT queue, kind, payload, priority, max_attempts FROM s
                    RETURNING id, created_at
                )
                INSERT INTO schedule_fires (schedule, fire_at, action, task_id, node_id)
                SELECT {0}, ins.created_at, 'run_now', ins.id, {1} FROM ins
                RETURNING task_id
                """, DSL.val(name), DSL.val(by)).fetchOptional(r -> r.get(0, Long.class));
    }

    /**
     * A declaration from code: inserts the schedule (enabled), or brings a stored one to this
     * definition. Never touches {@code enabled}: a schedule an operator disabled stays disabled across
     * deployments. A changed timing (cron, interval, zone) unplaces it (next fire: the first after now);
     * a change of the task only applies to the fires from then on; the same definition changes nothing.
     */
    public Upsert upsert(Schedule s, String by) {
        Record r = dsl.resultQuery("""
                INSERT INTO schedules AS o (name, cron, every_s, time_zone, kind, payload, queue, priority, max_attempts,
                                            missed, backfill_max, changed_by)
                VALUES ({0}, {1}, {2}, {3}, {4}, {5}::jsonb, {6}, {7}, {8}, {9}, {10}, {11})
                ON CONFLICT (name) DO UPDATE
                   SET cron = excluded.cron, every_s = excluded.every_s, time_zone = excluded.time_zone,
                       kind = excluded.kind, payload = excluded.payload, queue = excluded.queue,
                       priority = excluded.priority, max_attempts = excluded.max_attempts, missed = excluded.missed,
                       backfill_max = excluded.backfill_max, changed_by = excluded.changed_by, updated_at = now(),
                       next_fire_at = CASE WHEN (o.cron, o.every_s, o.time_zone)
                                                IS DISTINCT FROM (excluded.cron, excluded.every_s, excluded.time_zone)
                                           THEN NULL ELSE o.next_fire_at END
                 WHERE (o.cron, o.every_s, o.time_zone, o.kind, o.payload, o.queue, o.priority, o.max_attempts, o.missed,
                        o.backfill_max)
                       IS DISTINCT FROM
                       (excluded.cron, excluded.every_s, excluded.time_zone, excluded.kind, excluded.payload, excluded.queue,
                        excluded.priority, excluded.max_attempts, excluded.missed, excluded.backfill_max)
                RETURNING (xmax = 0) AS created
                """, DSL.val(s.name()), DSL.val(s.cron()), DSL.val(s.everySeconds(), Integer.class), DSL.val(s.zone().getId()),
                DSL.val(s.kind()), DSL.val(s.payloadJson()), DSL.val(s.queue()), DSL.val(s.priority()),
                DSL.val(s.maxAttempts()), DSL.val(s.missed().sql()), DSL.val(s.backfillMax()), DSL.val(by)).fetchOne();
        if (r == null) return Upsert.UNCHANGED;
        return r.get("created", Boolean.class) ? Upsert.CREATED : Upsert.UPDATED;
    }

    /** Inserts a new schedule ({@code enabled} as given); false when the name is taken (nothing changed). */
    public boolean add(Schedule s, boolean enabled, String by) {
        return dsl.execute("""
                INSERT INTO schedules (name, cron, every_s, time_zone, kind, payload, queue, priority, max_attempts,
                                       missed, backfill_max, enabled, changed_by)
                VALUES ({0}, {1}, {2}, {3}, {4}, {5}::jsonb, {6}, {7}, {8}, {9}, {10}, {11}, {12})
                ON CONFLICT (name) DO NOTHING
                """, DSL.val(s.name()), DSL.val(s.cron()), DSL.val(s.everySeconds(), Integer.class), DSL.val(s.zone().getId()),
                DSL.val(s.kind()), DSL.val(s.payloadJson()), DSL.val(s.queue()), DSL.val(s.priority()),
                DSL.val(s.maxAttempts()), DSL.val(s.missed().sql()), DSL.val(s.backfillMax()), DSL.val(enabled), DSL.val(by)) == 1;
    }

    /**
     * disabled ↔ enabled. Disabled, a schedule has no next fire time; enabled again, it is placed at its
     * first fire time after now (here, or by the Scheduler when the row is one Java cannot read), so the
     * fire times of the disabled period are neither enqueued nor skipped. Empty: no such schedule;
     * {@code changed} false: it was in that state already.
     */
    public Optional<Boolean> setEnabled(String name, boolean enabled, String by) {
        int n = dsl.execute("""
                UPDATE schedules SET enabled = {1}, next_fire_at = NULL, changed_by = {2}, updated_at = now()
                 WHERE name = {0} AND enabled <> {1}
                """, DSL.val(name), DSL.val(enabled), DSL.val(by));
        if (n == 0) return find(name).map(x -> false);
        if (enabled) {
            try {
                find(name).ifPresent(s -> placeAfterNow(name, s.definition().recurrence()));
            } catch (IllegalArgumentException e) {
                // a row Java cannot read (inserted by SQL): enabled all the same; the Scheduler reports it
            }
        }
        return Optional.of(true);
    }

    /** Deletes the schedule and its history; false when there was none. Tasks it enqueued stay. */
    public boolean remove(String name) {
        return dsl.execute("DELETE FROM schedules WHERE name = {0}", DSL.val(name)) == 1;
    }

    /** The latest {@code limit} history rows of {@code name}, newest first. */
    public List<Fire> history(String name, int limit) {
        return dsl.resultQuery("SELECT * FROM schedule_fires WHERE schedule = {0} ORDER BY id DESC LIMIT {1}",
                DSL.val(name), DSL.val(limit)).fetch(r -> new Fire(r.get("id", Long.class), r.get("schedule", String.class),
                r.get("fire_at", OffsetDateTime.class), r.get("action", String.class), r.get("task_id", Long.class),
                r.get("skipped_until", OffsetDateTime.class), r.get("skipped_count", Long.class), r.get("node_id", String.class),
                r.get("recorded_at", OffsetDateTime.class)));
    }

    private static Stored stored(Record r) {
        return new Stored(r.get("name", String.class), r.get("cron", String.class), r.get("every_s", Integer.class),
                r.get("time_zone", String.class), r.get("kind", String.class), r.get("payload", String.class),
                r.get("queue", String.class), r.get("priority", Integer.class), r.get("max_attempts", Integer.class),
                r.get("enabled", Boolean.class), r.get("missed", String.class), r.get("backfill_max", Integer.class),
                r.get("next_fire_at", OffsetDateTime.class), r.get("last_fired_at", OffsetDateTime.class),
                r.get("created_at", OffsetDateTime.class), r.get("updated_at", OffsetDateTime.class),
                r.get("changed_by", String.class));
    }
}

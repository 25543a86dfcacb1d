package pgdispatch.store;

import static pgdispatch.store.jooq.Tables.TASKS;
import static pgdispatch.store.jooq.Tables.TASK_EVENTS;
import static pgdispatch.store.jooq.Tables.TASK_EVENT_LOG;

import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import javax.sql.DataSource;
import org.jooq.Condition;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.Record;
import org.jooq.impl.DSL;
import pgdispatch.store.jooq.tables.records.TasksRecord;

/** Read-only questions about tasks: status report, listings, one task with its events, gauges. */
public final class TaskQueries {
    private final DSLContext dsl;

    /** Over {@code db}'s pool, in its schema. */
    public TaskQueries(Database db) {
        this(db.dataSource(), db.url().schema());
    }

    /** Over {@code ds}, naming tables in {@code schema} (null: unqualified, resolved by the connections' search_path). */
    public TaskQueries(DataSource ds, String schema) {
        this.dsl = Database.dsl(ds, schema);
    }

    /** Over {@code ds} whose connections' search_path leads to pgdispatch's tables (as {@link Database#open} sets it). */
    public TaskQueries(DataSource ds) {
        this(ds, null);
    }

    /** One queue's figures: counts by status, age of its oldest due pending task (lag), stale running. */
    public record QueueStats(String queue, Map<String, Long> byStatus, double lagSeconds, long stale,
                             long requeuedTotal) {}

    /** A running task with the time its lease has left and its heartbeat age, by the database clock. */
    public record RunningTask(long id, String queue, String kind, String owner, long leaseToken, int attempt,
                              double leaseSecondsLeft, double heartbeatAgeSeconds) {}

    /** A task row as stored, for {@code tasks show} and listings. */
    public record TaskView(long id, String queue, String kind, String status, int priority, int attempts,
                           int maxAttempts, int requeueCount, String owner, long leaseToken, OffsetDateTime runAt,
                           OffsetDateTime leaseExpiresAt, OffsetDateTime lastHeartbeatAt, OffsetDateTime createdAt,
                           OffsetDateTime finishedAt, String lastError, String payload, String result,
                           String progress, String idempotencyKey) {}

    /** A {@code task_events} row; {@code detail} is its JSON text. */
    public record EventView(long id, long taskId, String event, String owner, Long leaseToken, OffsetDateTime at,
                            String detail) {}

    /** Per-queue figures; {@code stale}/{@code nodeTimeout} as the reaper counts them. */
    public List<QueueStats> queueStats(Duration stale, Duration nodeTimeout) {
        var rows = dsl.resultQuery("""
                SELECT t.queue,
                       count(*) FILTER (WHERE t.status = 'waiting')     AS waiting,
                       count(*) FILTER (WHERE t.status = 'pending')     AS pending,
                       count(*) FILTER (WHERE t.status = 'running')     AS running,
                       count(*) FILTER (WHERE t.status = 'succeeded')   AS succeeded,
                       count(*) FILTER (WHERE t.status = 'failed')      AS failed,
                       count(*) FILTER (WHERE t.status = 'cancelled')   AS cancelled,
                       count(*) FILTER (WHERE t.status = 'quarantined') AS quarantined,
                       count(*) FILTER (WHERE t.status = 'compensating') AS compensating,
                       count(*) FILTER (WHERE t.status = 'compensated') AS compensated,
                       -- isfinite: a legacy run_at of -infinity (before V9) is never claimed and has no age
                       coalesce(extract(epoch FROM now() - min(t.run_at) FILTER (
                                WHERE t.status = 'pending' AND t.run_at <= now() AND isfinite(t.run_at))), 0)::float8 AS lag,
                       count(*) FILTER (WHERE t.status = 'running' AND """ + TaskStore.STALE_PREDICATE
                        .replace(":stale_ms", "{0}").replace(":node_timeout_ms", "{1}") + """
                                ) AS stale,
                       coalesce(sum(t.requeue_count), 0)::bigint AS requeued
                  FROM tasks t LEFT JOIN dispatcher_nodes n ON n.node_id = t.owner_id
                 GROUP BY t.queue ORDER BY t.queue
                """, DSL.val(stale.toMillis()), DSL.val(nodeTimeout.toMillis())).fetch();
        return rows.map(r -> new QueueStats(r.get("queue", String.class),
                Map.of("waiting", r.get("waiting", Long.class), "pending", r.get("pending", Long.class), "running", r.get("running", Long.class),
                        "succeeded", r.get("succeeded", Long.class), "failed", r.get("failed", Long.class),
                        "cancelled", r.get("cancelled", Long.class), "quarantined", r.get("quarantined", Long.class),
                        "compensating", r.get("compensating", Long.class), "compensated", r.get("compensated", Long.class)),
                r.get("lag", Double.class), r.get("stale", Long.class), r.get("requeued", Long.class)));
    }

    /** Claimed, succeeded and failed (attempts that failed, retried or not) in one minute. */
    public record Throughput(OffsetDateTime minute, long claimed, long succeeded, long failed) {}

    /**
     * The events at or after {@code since} (a SQL expression) as (event, at): task_event_log's rows through
     * its index on {@code at}, and the claimed and succeeded rows V13 shows from the task rows, read through
     * the partial indexes on running rows and on finished_at (a derived claim is on a running or a
     * succeeded task, and a succeeded task that started at or after {@code since} finished after it).
     * The task_events view gives the same rows, but a time range over it reads every task row.
     */
    private static String eventsSince(String since) {
        return """
                SELECT e.event, e.at FROM task_event_log e WHERE e.at >= SINCE
                UNION ALL
                SELECT 'claimed', t.started_at FROM tasks t
                 WHERE t.status = 'running' AND t.claim_event_id IS NOT NULL AND t.started_at >= SINCE
                UNION ALL
                SELECT 'claimed', t.started_at FROM tasks t
                 WHERE t.status = 'succeeded' AND t.finished_at >= SINCE AND t.claim_event_id IS NOT NULL
                   AND t.started_at >= SINCE
                UNION ALL
                SELECT 'succeeded', t.finished_at FROM tasks t
                 WHERE t.status = 'succeeded' AND t.finished_at >= SINCE AND t.done_event_id IS NOT NULL
                """.replace("SINCE", since);
    }

    /**
     * Per minute over the last {@code minutes} minutes (oldest first, every minute present, the current
     * one included), counted from the audit trail (see {@link #eventsSince}).
     */
    public List<Throughput> throughput(int minutes) {
        return dsl.resultQuery("""
                SELECT m.minute,
                       count(e.at) FILTER (WHERE e.event = 'claimed') AS claimed,
                       count(e.at) FILTER (WHERE e.event = 'succeeded') AS succeeded,
                       count(e.at) FILTER (WHERE e.event IN ('failed', 'retry_scheduled')) AS failed
                  FROM generate_series(date_trunc('minute', now()) - ({0} - 1) * interval '1 minute',
                                       date_trunc('minute', now()), interval '1 minute') AS m(minute)
                  LEFT JOIN (""" + eventsSince("date_trunc('minute', now()) - ({0} - 1) * interval '1 minute'") + """
                       ) e
                         ON date_trunc('minute', e.at) = m.minute
                        AND e.event IN ('claimed', 'succeeded', 'failed', 'retry_scheduled')
                 GROUP BY m.minute ORDER BY m.minute
                """, DSL.val(minutes)).fetch(r -> new Throughput(r.get("minute", OffsetDateTime.class),
                r.get("claimed", Long.class), r.get("succeeded", Long.class), r.get("failed", Long.class)));
    }

    /** The database's clock, which every age on the dashboard is measured by. */
    public OffsetDateTime now() {
        return dsl.select(DSL.currentOffsetDateTime()).fetchOne(0, OffsetDateTime.class);
    }

    /**
     * The dashboard's task listing filter; a null field does not filter. {@code createdFrom} is
     * inclusive, {@code createdTo} exclusive.
     */
    public record TaskFilter(Long id, String queue, String kind, String status, String owner,
                             OffsetDateTime createdFrom, OffsetDateTime createdTo) {
        public static final TaskFilter NONE = new TaskFilter(null, null, null, null, null, null, null);
    }

    /** One page of a listing, newest first; {@code nextBefore} continues it (null: this is the last page). */
    public record TaskPage(List<TaskView> tasks, Long nextBefore) {}

    /**
     * Tasks matching {@code f} with an id below {@code beforeId} (null: from the newest), newest first, at
     * most {@code limit}: keyset pagination, so page 1,000 costs what page 1 costs (no OFFSET).
     */
    public TaskPage page(TaskFilter f, Long beforeId, int limit) {
        List<TaskView> rows = pageQuery(f, beforeId, limit + 1).fetch(TaskQueries::view);
        return rows.size() > limit ? new TaskPage(rows.subList(0, limit), rows.get(limit - 1).id()) : new TaskPage(rows, null);
    }

    /** The plan of {@link #page} (tests assert it stays an index walk on a big table). */
    public String explainPage(TaskFilter f, Long beforeId, int limit) {
        return dsl.fetch("EXPLAIN " + dsl.renderInlined(pageQuery(f, beforeId, limit + 1)))
                .map(r -> r.get(0, String.class)).stream().reduce((a, b) -> a + "\n" + b).orElse("");
    }

    private org.jooq.SelectLimitPercentStep<Record> pageQuery(TaskFilter f, Long beforeId, int limit) {
        Condition c = DSL.trueCondition();
        if (f.id() != null) c = c.and(TASKS.ID.eq(f.id()));
        if (f.queue() != null) c = c.and(TASKS.QUEUE.eq(f.queue()));
        if (f.kind() != null) c = c.and(TASKS.KIND.eq(f.kind()));
        if (f.status() != null) c = c.and(TASKS.STATUS.eq(f.status()));
        if (f.owner() != null) c = c.and(TASKS.OWNER_ID.eq(f.owner()));
        if (f.createdFrom() != null) c = c.and(TASKS.CREATED_AT.ge(f.createdFrom()));
        if (f.createdTo() != null) c = c.and(TASKS.CREATED_AT.lt(f.createdTo()));
        if (beforeId != null) c = c.and(TASKS.ID.lt(beforeId));
        return selectTasks().where(c).orderBy(TASKS.ID.desc()).limit(limit);
    }

    /**
     * One kind's running leases, cluster-wide, by the database clock: how many run, expire within the next
     * renewal interval, are stale (the reaper would take them back now), are silent past their stuck bound
     * (their owner should have ended them: it is not judging), the longest handler silence, renewals and
     * extensions per attempt.
     */
    public record KindLeases(String kind, long running, long expiring, long stale, long stuck, double silenceMaxSeconds,
                             double renewalsAvg, long renewalsMax, long extensionsMax) {}

    private static final NamedSql LEASE_STATS = NamedSql.of("""
            WITH rule AS (
                SELECT * FROM unnest(:rule_kinds::text[], :rule_factor::float8[], :rule_floor_ms::bigint[],
                                     :rule_judge_silent::boolean[], :rule_requeue::boolean[])
                              AS r(kind, factor, floor_ms, judge_silent, requeue)
            )
            SELECT t.kind, count(*) AS running,
                   count(*) FILTER (WHERE t.lease_expires_at < now() + :renew_ms * interval '1 millisecond') AS expiring,
                   count(*) FILTER (WHERE """ + TaskStore.STALE_PREDICATE + """
                                   ) AS stale,
                   count(*) FILTER (WHERE coalesce(r.factor, w.factor) IS NOT NULL
                                      AND pgdispatch_is_stuck(t.last_heartbeat_at, t.quiet_until, t.progress_count,
                                              t.progress_interval_ms, coalesce(r.factor, w.factor),
                                              coalesce(r.floor_ms, w.floor_ms), :stale_ms,
                                              coalesce(r.judge_silent, w.judge_silent))) AS stuck,
                   coalesce(max(extract(epoch FROM now() - coalesce(t.last_heartbeat_at, t.updated_at))), 0)::float8 AS silence,
                   coalesce(avg(t.renew_count), 0)::float8 AS renewals_avg, coalesce(max(t.renew_count), 0) AS renewals_max,
                   coalesce(max(t.extension_count), 0) AS extensions_max
              FROM tasks t
              LEFT JOIN dispatcher_nodes n ON n.node_id = t.owner_id
              LEFT JOIN rule r ON r.kind = t.kind
              LEFT JOIN rule w ON w.kind = '*'
             WHERE t.status = 'running'
             GROUP BY t.kind ORDER BY t.kind
            """);

    /**
     * Per kind of running task, the lease figures of {@link KindLeases}. {@code rules} judges "stuck" (a
     * rule for kind {@code *} applies to kinds without their own: what {@code status} uses, not knowing the
     * handlers); {@code renew} is the interval for "expiring"; {@code nodeTimeout} and the rules' stale
     * bound judge "stale" as the reaper does.
     */
    public List<KindLeases> leaseStats(Duration renew, Duration nodeTimeout, StuckRules rules) {
        Map<String, Object> v = new java.util.HashMap<>();
        rules.bind(v);
        v.put("renew_ms", renew.toMillis());
        v.put("node_timeout_ms", nodeTimeout.toMillis());
        return dsl.connectionResult(c -> {
            try (var ps = LEASE_STATS.prepare(c, v); var rs = ps.executeQuery()) {
                List<KindLeases> out = new java.util.ArrayList<>();
                while (rs.next()) {
                    out.add(new KindLeases(rs.getString("kind"), rs.getLong("running"), rs.getLong("expiring"),
                            rs.getLong("stale"), rs.getLong("stuck"), rs.getDouble("silence"), rs.getDouble("renewals_avg"),
                            rs.getLong("renewals_max"), rs.getLong("extensions_max")));
                }
                return out;
            }
        });
    }

    /** Running tasks, soonest lease expiry first, at most {@code limit}. */
    public List<RunningTask> running(int limit) {
        return dsl.resultQuery("""
                SELECT id, queue, kind, owner_id, lease_token, attempts,
                       coalesce(extract(epoch FROM lease_expires_at - now()), 0)::float8 AS left_s,
                       coalesce(extract(epoch FROM now() - coalesce(last_heartbeat_at, updated_at)), 0)::float8 AS hb_s
                  FROM tasks WHERE status = 'running'
                 ORDER BY lease_expires_at NULLS FIRST, id LIMIT {0}
                """, DSL.val(limit)).fetch(r -> new RunningTask(r.get("id", Long.class), r.get("queue", String.class),
                r.get("kind", String.class), r.get("owner_id", String.class), r.get("lease_token", Long.class),
                r.get("attempts", Integer.class), r.get("left_s", Double.class), r.get("hb_s", Double.class)));
    }

    /** Event totals since {@code since} ago, by event name (recovery effectiveness). */
    public Map<String, Long> eventCounts(Duration since) {
        return dsl.resultQuery("SELECT e.event, count(*) AS n FROM (" + eventsSince("now() - {0} * interval '1 millisecond'") + ") e GROUP BY e.event",
                        DSL.val(since.toMillis()))
                .fetchMap(r -> r.get("event", String.class), r -> r.get("n", Long.class));
    }

    /** Pending tasks whose kind no live node has a handler for (they would wait forever). */
    public Map<String, Long> pendingWithoutHandler(Duration nodeTimeout) {
        return dsl.resultQuery("""
                SELECT t.kind, count(*) AS n FROM tasks t
                 WHERE t.status = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM dispatcher_nodes n
                                    WHERE t.kind = ANY(n.kinds) AND t.queue = ANY(n.queues)
                                      AND n.stopped_at IS NULL AND n.last_seen_at >= now() - {0} * interval '1 millisecond')
                 GROUP BY t.kind ORDER BY t.kind
                """, DSL.val(nodeTimeout.toMillis())).fetchMap(r -> r.get("kind", String.class), r -> r.get("n", Long.class));
    }

    // A legacy run_at of 'infinity' or '-infinity' (before V9's check) is no instant jOOQ can read: it is
    // read as NULL plus its sign, and shown as OffsetDateTime.MAX or MIN (docs/CLI.md prints the word).
    private static final Field<OffsetDateTime> FINITE_RUN_AT = DSL.field("CASE WHEN isfinite({0}) THEN {0} END",
            OffsetDateTime.class, TASKS.RUN_AT).as(TASKS.RUN_AT.getName());
    private static final Field<Integer> RUN_AT_INFINITE = DSL.field(
            "CASE WHEN isfinite({0}) THEN 0 WHEN {0} > now() THEN 1 ELSE -1 END", Integer.class, TASKS.RUN_AT).as("run_at_infinite");

    private org.jooq.SelectJoinStep<Record> selectTasks() {
        List<Field<?>> fields = new java.util.ArrayList<>();
        for (Field<?> f : TASKS.fields()) fields.add(f.equals(TASKS.RUN_AT) ? FINITE_RUN_AT : f);
        fields.add(RUN_AT_INFINITE);
        return dsl.select(fields).from(TASKS);
    }

    public Optional<TaskView> task(long id) {
        return selectTasks().where(TASKS.ID.eq(id)).fetchOptional(TaskQueries::view);
    }

    /** Tasks filtered by status and queue (either may be null), newest first. */
    public List<TaskView> tasks(String status, String queue, int limit) {
        return tasks(status, queue, null, limit);
    }

    /** Tasks filtered by status, queue and kind (each may be null), newest first. */
    public List<TaskView> tasks(String status, String queue, String kind, int limit) {
        Condition c = DSL.trueCondition();
        if (status != null) c = c.and(TASKS.STATUS.eq(status));
        if (queue != null) c = c.and(TASKS.QUEUE.eq(queue));
        if (kind != null) c = c.and(TASKS.KIND.eq(kind));
        return selectTasks().where(c).orderBy(TASKS.ID.desc()).limit(limit).fetch(TaskQueries::view);
    }

    /** A dependency of a task ({@code depends_on}, V12_2) as it is now; {@code status} null: pruned since. */
    public record DependencyView(long id, String kind, String status) {}

    /**
     * What task {@code id} waits for: its dependencies in id order with their status now, what it does
     * when one ends other than succeeded, and how many have not ended yet. Empty: no dependencies.
     */
    public record Dependencies(List<DependencyView> tasks, String onFailure, int left) {}

    public Optional<Dependencies> dependencies(long id) {
        var rows = dsl.resultQuery("""
                SELECT d.id, o.kind, o.status, t.on_dependency_failure, t.dependencies_left
                  FROM tasks t CROSS JOIN LATERAL unnest(t.depends_on) AS d(id)
                  LEFT JOIN tasks o ON o.id = d.id
                 WHERE t.id = {0}
                 ORDER BY d.id
                """, DSL.val(id)).fetch();
        if (rows.isEmpty()) return Optional.empty();
        return Optional.of(new Dependencies(rows.map(r -> new DependencyView(r.get("id", Long.class),
                r.get("kind", String.class), r.get("status", String.class))),
                rows.get(0).get("on_dependency_failure", String.class), rows.get(0).get("dependencies_left", Integer.class)));
    }

    /** One task's events, oldest first. */
    public List<EventView> events(long taskId) {
        return dsl.selectFrom(TASK_EVENTS).where(TASK_EVENTS.TASK_ID.eq(taskId)).orderBy(TASK_EVENTS.ID)
                .fetch(TaskQueries::event);
    }

    /**
     * Events of every task with an id above {@code afterId}, oldest first, at most {@code limit}: a
     * follower polls with the last id it saw. (An event whose transaction commits after a later id was
     * read is skipped; the demo's narration tolerates that, an audit would not.)
     */
    public List<EventView> eventsAfter(long afterId, int limit) {
        return dsl.selectFrom(TASK_EVENTS).where(TASK_EVENTS.ID.gt(afterId)).orderBy(TASK_EVENTS.ID).limit(limit)
                .fetch(TaskQueries::event);
    }

    private static EventView event(pgdispatch.store.jooq.tables.records.TaskEventsRecord r) {
        return new EventView(r.getId(), r.getTaskId(), r.getEvent(), r.getOwnerId(), r.getLeaseToken(), r.getAt(),
                r.getDetail() == null ? null : r.getDetail().data());
    }

    /**
     * Dependency releases recorded in {@code task_event_log} (they are always stored) with an id above {@code afterId} (V12_2: waiting
     * tasks made pending, and cancelled because a dependency ended otherwise), and the highest event id
     * read; {@code afterId} null: none counted, only the highest id now (a node starts counting there).
     * Walks the primary key from {@code afterId}: the cost is the events since the last look.
     */
    public DependencyEvents dependencyEventsAfter(Long afterId) {
        if (afterId == null) {
            Long max = dsl.select(DSL.max(TASK_EVENT_LOG.ID)).from(TASK_EVENT_LOG).fetchOne(0, Long.class);
            return new DependencyEvents(max == null ? 0 : max, 0, 0);
        }
        return dsl.resultQuery("""
                SELECT coalesce(max(id), {0}) AS last,
                       count(*) FILTER (WHERE event = 'dependencies_resolved') AS released,
                       count(*) FILTER (WHERE event = 'cancelled' AND detail ->> 'by' = 'dependency') AS cancelled
                  FROM task_event_log WHERE id > {0}
                """, DSL.val(afterId)).fetchOne(r -> new DependencyEvents(r.get("last", Long.class),
                r.get("released", Long.class), r.get("cancelled", Long.class)));
    }

    /** What {@link #dependencyEventsAfter} counted. */
    public record DependencyEvents(long lastEventId, long released, long cancelled) {}

    /** Running tasks per owner node id (nodes listing). */
    public Map<String, Long> runningByOwner() {
        return dsl.select(TASKS.OWNER_ID, DSL.count().cast(Long.class)).from(TASKS)
                .where(TASKS.STATUS.eq(TaskStatus.RUNNING.sql()).and(TASKS.OWNER_ID.isNotNull()))
                .groupBy(TASKS.OWNER_ID)
                .fetchMap(TASKS.OWNER_ID, DSL.count().cast(Long.class));
    }

    /**
     * Due pending depth and lag (seconds) by queue, for gauges; a queue with only later tasks has depth 0.
     * A legacy row with an infinite run_at (before V9) is never claimed, so it counts in neither.
     */
    public Map<String, double[]> depthAndLag() {
        return dsl.resultQuery("""
                SELECT queue, (count(*) FILTER (WHERE run_at <= now() AND isfinite(run_at)))::float8 AS depth,
                       coalesce(extract(epoch FROM now() - min(run_at) FILTER (
                                WHERE run_at <= now() AND isfinite(run_at))), 0)::float8 AS lag
                  FROM tasks WHERE status = 'pending' GROUP BY queue
                """).fetchMap(r -> r.get("queue", String.class),
                r -> new double[] {r.get("depth", Double.class), r.get("lag", Double.class)});
    }

    private static TaskView view(Record row) {
        TasksRecord r = row.into(TASKS);
        int infinite = row.get(RUN_AT_INFINITE);
        OffsetDateTime runAt = infinite > 0 ? OffsetDateTime.MAX : infinite < 0 ? OffsetDateTime.MIN : r.getRunAt();
        return new TaskView(r.getId(), r.getQueue(), r.getKind(), r.getStatus(), r.getPriority(), r.getAttempts(),
                r.getMaxAttempts(), r.getRequeueCount(), r.getOwnerId(), r.getLeaseToken(), runAt,
                r.getLeaseExpiresAt(), r.getLastHeartbeatAt(), r.getCreatedAt(), r.getFinishedAt(), r.getLastError(),
                r.getPayload() == null ? null : r.getPayload().data(), r.getResult() == null ? null : r.getResult().data(),
                r.getProgress() == null ? null : r.getProgress().data(), r.getIdempotencyKey());
    }
}

package pgdispatch.store;

import static pgdispatch.store.jooq.Tables.TASKS;
import static pgdispatch.store.jooq.Tables.TASK_EVENTS;

import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import javax.sql.DataSource;
import org.jooq.Condition;
import org.jooq.DSLContext;
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
                       count(*) FILTER (WHERE t.status = 'pending')     AS pending,
                       count(*) FILTER (WHERE t.status = 'running')     AS running,
                       count(*) FILTER (WHERE t.status = 'succeeded')   AS succeeded,
                       count(*) FILTER (WHERE t.status = 'failed')      AS failed,
                       count(*) FILTER (WHERE t.status = 'cancelled')   AS cancelled,
                       count(*) FILTER (WHERE t.status = 'quarantined') AS quarantined,
                       coalesce(extract(epoch FROM now() - min(t.run_at) FILTER (
                                WHERE t.status = 'pending' AND t.run_at <= now())), 0)::float8 AS lag,
                       count(*) FILTER (WHERE t.status = 'running' AND (t.lease_expires_at < now()
                                OR coalesce(t.last_heartbeat_at, t.updated_at) < now() - {0} * interval '1 millisecond'
                                OR n.stopped_at IS NOT NULL
                                OR n.last_seen_at < now() - {1} * interval '1 millisecond')) AS stale,
                       coalesce(sum(t.requeue_count), 0)::bigint AS requeued
                  FROM tasks t LEFT JOIN dispatcher_nodes n ON n.node_id = t.owner_id
                 GROUP BY t.queue ORDER BY t.queue
                """, DSL.val(stale.toMillis()), DSL.val(nodeTimeout.toMillis())).fetch();
        return rows.map(r -> new QueueStats(r.get("queue", String.class),
                Map.of("pending", r.get("pending", Long.class), "running", r.get("running", Long.class),
                        "succeeded", r.get("succeeded", Long.class), "failed", r.get("failed", Long.class),
                        "cancelled", r.get("cancelled", Long.class), "quarantined", r.get("quarantined", Long.class)),
                r.get("lag", Double.class), r.get("stale", Long.class), r.get("requeued", Long.class)));
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
        return dsl.select(TASK_EVENTS.EVENT, DSL.count().cast(Long.class))
                .from(TASK_EVENTS)
                .where(TASK_EVENTS.AT.gt(DSL.currentOffsetDateTime().minus(DSL.val(org.jooq.types.DayToSecond.valueOf(since)))))
                .groupBy(TASK_EVENTS.EVENT)
                .fetchMap(TASK_EVENTS.EVENT, DSL.count().cast(Long.class));
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

    public Optional<TaskView> task(long id) {
        return dsl.selectFrom(TASKS).where(TASKS.ID.eq(id)).fetchOptional(TaskQueries::view);
    }

    /** Tasks filtered by status and queue (either may be null), newest first. */
    public List<TaskView> tasks(String status, String queue, int limit) {
        Condition c = DSL.trueCondition();
        if (status != null) c = c.and(TASKS.STATUS.eq(status));
        if (queue != null) c = c.and(TASKS.QUEUE.eq(queue));
        return dsl.selectFrom(TASKS).where(c).orderBy(TASKS.ID.desc()).limit(limit).fetch(TaskQueries::view);
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

    /** Running tasks per owner node id (nodes listing). */
    public Map<String, Long> runningByOwner() {
        return dsl.select(TASKS.OWNER_ID, DSL.count().cast(Long.class)).from(TASKS)
                .where(TASKS.STATUS.eq(TaskStatus.RUNNING.sql()).and(TASKS.OWNER_ID.isNotNull()))
                .groupBy(TASKS.OWNER_ID)
                .fetchMap(TASKS.OWNER_ID, DSL.count().cast(Long.class));
    }

    /** Due pending depth and lag (seconds) by queue, for gauges; a queue with only later tasks has depth 0. */
    public Map<String, double[]> depthAndLag() {
        return dsl.resultQuery("""
                SELECT queue, (count(*) FILTER (WHERE run_at <= now()))::float8 AS depth,
                       coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)::float8 AS lag
                  FROM tasks WHERE status = 'pending' GROUP BY queue
                """).fetchMap(r -> r.get("queue", String.class),
                r -> new double[] {r.get("depth", Double.class), r.get("lag", Double.class)});
    }

    private static TaskView view(TasksRecord r) {
        return new TaskView(r.getId(), r.getQueue(), r.getKind(), r.getStatus(), r.getPriority(), r.getAttempts(),
                r.getMaxAttempts(), r.getRequeueCount(), r.getOwnerId(), r.getLeaseToken(), r.getRunAt(),
                r.getLeaseExpiresAt(), r.getLastHeartbeatAt(), r.getCreatedAt(), r.getFinishedAt(), r.getLastError(),
                r.getPayload() == null ? null : r.getPayload().data(), r.getResult() == null ? null : r.getResult().data(),
                r.getProgress() == null ? null : r.getProgress().data(), r.getIdempotencyKey());
    }
}

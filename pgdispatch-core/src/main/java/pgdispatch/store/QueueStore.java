package pgdispatch.store;

import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * The {@code dispatcher_queues} rows: pausing and resuming a queue, and the overview of every queue
 * the CLI and the dashboard show. The claim reads the paused flag itself ({@link TaskStore#claimDue}),
 * so a pause needs no node to be told; a resume wakes the nodes serving the queue (V11_1's trigger).
 */
public final class QueueStore {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}");

    private final DSLContext dsl;

    public QueueStore(DataSource ds) {
        this.dsl = DSL.using(ds, SQLDialect.POSTGRES);
    }

    /** A queue's pause state as stored; a queue never paused has {@code changedAt} null. */
    public record QueueState(String queue, boolean paused, OffsetDateTime changedAt, String changedBy, String reason) {}

    /** The outcome of a pause or resume: the state now, and whether this call changed it. */
    public record Change(QueueState state, boolean changed) {}

    /**
     * One queue as operators see it: pause state, pending (due or later) and running tasks, and the live
     * nodes that serve it.
     */
    public record QueueOverview(QueueState state, long pending, long running, List<String> liveNodes) {}

    /** Checks a queue name by the rule of {@code tasks.queue}; the message names the value and the rule. */
    public static String requireName(String queue) {
        if (queue == null || !NAME.matcher(queue).matches()) {
            throw new IllegalArgumentException("queue=" + (queue == null ? "(missing)" : "'" + queue + "'")
                    + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        }
        return queue;
    }

    /**
     * not paused → paused: no node claims from {@code queue} from its next claim on; running tasks
     * finish. {@code changed} false: it was paused already (the stored reason is kept).
     */
    public Change pause(String queue, String by, String reason) {
        requireName(queue);
        Optional<QueueState> r = dsl.resultQuery("""
                INSERT INTO dispatcher_queues AS q (queue, paused, changed_at, changed_by, reason)
                VALUES ({0}, true, now(), {1}, {2})
                ON CONFLICT (queue) DO UPDATE
                   SET paused = true, changed_at = now(), changed_by = excluded.changed_by, reason = excluded.reason
                 WHERE NOT q.paused
                RETURNING q.*
                """, DSL.val(queue), DSL.val(by), DSL.val(reason)).fetchOptional(QueueStore::state);
        return r.map(s -> new Change(s, true)).orElseGet(() -> new Change(state(queue), false));
    }

    /**
     * paused → not paused, and the nodes serving {@code queue} are woken. {@code changed} false: it was
     * not paused.
     */
    public Change resume(String queue, String by, String reason) {
        requireName(queue);
        Optional<QueueState> r = dsl.resultQuery("""
                UPDATE dispatcher_queues
                   SET paused = false, changed_at = now(), changed_by = {1}, reason = {2}
                 WHERE queue = {0} AND paused
                RETURNING *
                """, DSL.val(queue), DSL.val(by), DSL.val(reason)).fetchOptional(QueueStore::state);
        return r.map(s -> new Change(s, true)).orElseGet(() -> new Change(state(queue), false));
    }

    /** The stored state of {@code queue}; never paused: not paused, no change recorded. */
    public QueueState state(String queue) {
        return dsl.resultQuery("SELECT * FROM dispatcher_queues WHERE queue = {0}", DSL.val(queue))
                .fetchOptional(QueueStore::state).orElse(new QueueState(queue, false, null, null, null));
    }

    /** The names of the paused queues, sorted. */
    public List<String> paused() {
        return dsl.resultQuery("SELECT queue FROM dispatcher_queues WHERE paused ORDER BY queue").fetch(r -> r.get(0, String.class));
    }

    /**
     * Every queue that has tasks, a stored state or a live node serving it, by name. Counts every task
     * row once (a scan of the table: an operator's question, not a hot path).
     */
    public List<QueueOverview> overview(Duration nodeTimeout) {
        return dsl.resultQuery("""
                WITH counts AS (
                    SELECT queue, count(*) FILTER (WHERE status = 'pending') AS pending,
                           count(*) FILTER (WHERE status = 'running') AS running
                      FROM tasks GROUP BY queue
                ), live AS (
                    SELECT q.name AS queue, array_agg(n.node_id ORDER BY n.node_id) AS nodes
                      FROM dispatcher_nodes n CROSS JOIN LATERAL unnest(n.queues) AS q(name)
                     WHERE n.stopped_at IS NULL AND n.last_seen_at >= now() - {0} * interval '1 millisecond'
                     GROUP BY q.name
                ), names AS (
                    SELECT queue FROM counts UNION SELECT queue FROM dispatcher_queues UNION SELECT queue FROM live
                )
                SELECT n.queue, coalesce(s.paused, false) AS paused, s.changed_at, s.changed_by, s.reason,
                       coalesce(c.pending, 0) AS pending, coalesce(c.running, 0) AS running,
                       coalesce(l.nodes, '{}') AS nodes
                  FROM names n
                  LEFT JOIN dispatcher_queues s ON s.queue = n.queue
                  LEFT JOIN counts c ON c.queue = n.queue
                  LEFT JOIN live l ON l.queue = n.queue
                 ORDER BY n.queue
                """, DSL.val(nodeTimeout.toMillis())).fetch(r -> new QueueOverview(
                new QueueState(r.get("queue", String.class), r.get("paused", Boolean.class),
                        r.get("changed_at", OffsetDateTime.class), r.get("changed_by", String.class),
                        r.get("reason", String.class)),
                r.get("pending", Long.class), r.get("running", Long.class), List.of(r.get("nodes", String[].class))));
    }

    private static QueueState state(Record r) {
        return new QueueState(r.get("queue", String.class), r.get("paused", Boolean.class),
                r.get("changed_at", OffsetDateTime.class), r.get("changed_by", String.class), r.get("reason", String.class));
    }
}

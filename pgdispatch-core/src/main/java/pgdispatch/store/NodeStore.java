package pgdispatch.store;

import static pgdispatch.store.jooq.Tables.DISPATCHER_NODES;

import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.impl.DSL;

/**
 * The {@code dispatcher_nodes} rows: registration of a node's incarnation, its stop, and the listing
 * ops use. The heartbeat itself rides on {@link TaskStore#renewHeld}, one statement per tick.
 */
public final class NodeStore {
    private final DSLContext dsl;

    /** Over {@code db}'s pool, in its schema. */
    public NodeStore(Database db) {
        this(db.dataSource(), db.url().schema());
    }

    /** Over {@code ds}, naming tables in {@code schema} (null: unqualified, resolved by the connections' search_path). */
    public NodeStore(DataSource ds, String schema) {
        this.dsl = Database.dsl(ds, schema);
    }

    /** Over {@code ds} whose connections' search_path leads to pgdispatch's tables (as {@link Database#open} sets it). */
    public NodeStore(DataSource ds) {
        this(ds, null);
    }

    /**
     * A node row as stored, with {@code alive} computed by the database clock; {@code health} is what the
     * node's readiness last said (null = ready), written at {@code healthAt}.
     */
    public record Node(String nodeId, UUID incarnation, String host, long pid, String version, List<String> queues,
                       List<String> kinds, OffsetDateTime startedAt, OffsetDateTime lastSeenAt, OffsetDateTime stoppedAt,
                       boolean alive, double secondsSinceSeen, String health, OffsetDateTime healthAt) {

        /** Whether the node said it was ready when it last wrote its health. */
        public boolean ready() {
            return health == null;
        }
    }

    /** Who holds the node id now, as the registration found it. */
    public sealed interface Registration {
        record Registered(UUID incarnation, Optional<Node> previous) implements Registration {}

        /** Another incarnation heartbeated within the timeout and could not be shown dead. */
        record HeldByLive(Node holder) implements Registration {}
    }

    /**
     * Registers a new incarnation of {@code nodeId}. Refused while another incarnation is alive (seen
     * within {@code nodeTimeout}, not stopped), unless {@code previousIsDead} (same host, its pid gone:
     * the caller checked) or {@code force}. One statement, so two processes starting at once cannot
     * both win.
     */
    public Registration register(String nodeId, String host, long pid, String version, List<String> queues,
                                 List<String> kinds, Duration nodeTimeout, boolean previousIsDead, boolean force) {
        Optional<Node> previous = find(nodeId, nodeTimeout);
        UUID incarnation = UUID.randomUUID();
        var n = DISPATCHER_NODES;
        var excluded = n.as("excluded");
        int rows = dsl.insertInto(n)
                .set(n.NODE_ID, nodeId).set(n.INCARNATION, incarnation).set(n.HOST, host).set(n.PID, pid)
                .set(n.VERSION, version).set(n.QUEUES, queues.toArray(String[]::new))
                .set(n.KINDS, kinds.toArray(String[]::new))
                .onConflict(n.NODE_ID).doUpdate()
                .set(n.INCARNATION, incarnation).set(n.HOST, host).set(n.PID, pid).set(n.VERSION, version)
                .set(n.QUEUES, queues.toArray(String[]::new)).set(n.KINDS, kinds.toArray(String[]::new))
                .set(n.STARTED_AT, DSL.currentOffsetDateTime()).set(n.LAST_SEEN_AT, DSL.currentOffsetDateTime())
                .setNull(n.STOPPED_AT)
                .setNull(n.HEALTH).setNull(n.HEALTH_AT) // the previous incarnation's word is not this one's
                .where(DSL.condition(force).or(n.STOPPED_AT.isNotNull())
                        .or(n.LAST_SEEN_AT.lt(DSL.currentOffsetDateTime().minus(millis(nodeTimeout))))
                        .or(DSL.condition(previousIsDead).and(n.HOST.eq(host))
                                .and(previous.map(p -> n.INCARNATION.eq(p.incarnation())).orElse(DSL.trueCondition()))))
                .execute();
        if (rows == 1) {
            return new Registration.Registered(incarnation, previous);
        }
        return new Registration.HeldByLive(find(nodeId, nodeTimeout).orElseThrow());
    }

    private static org.jooq.Field<org.jooq.types.DayToSecond> millis(Duration d) {
        return DSL.val(org.jooq.types.DayToSecond.valueOf(d));
    }

    /**
     * Stores what this incarnation's readiness says ({@code null} = ready), so that other processes
     * ({@code pgdispatch status}) see it; a newer incarnation's row is left alone. The node writes it when
     * it changes. Returns false when the row is no longer this incarnation's.
     */
    public boolean reportHealth(String nodeId, UUID incarnation, String health) {
        String bounded = health == null || health.length() <= 2000 ? health : health.substring(0, 1999) + "…";
        return dsl.update(DISPATCHER_NODES).set(DISPATCHER_NODES.HEALTH, bounded)
                .set(DISPATCHER_NODES.HEALTH_AT, DSL.currentOffsetDateTime())
                .where(DISPATCHER_NODES.NODE_ID.eq(nodeId).and(DISPATCHER_NODES.INCARNATION.eq(incarnation)))
                .execute() == 1;
    }

    /** Marks this incarnation stopped (graceful shutdown); a newer incarnation's row is left alone. */
    public boolean markStopped(String nodeId, UUID incarnation) {
        return dsl.update(DISPATCHER_NODES).set(DISPATCHER_NODES.STOPPED_AT, DSL.currentOffsetDateTime())
                .where(DISPATCHER_NODES.NODE_ID.eq(nodeId).and(DISPATCHER_NODES.INCARNATION.eq(incarnation)))
                .execute() == 1;
    }

    public Optional<Node> find(String nodeId, Duration nodeTimeout) {
        return list(nodeTimeout, DISPATCHER_NODES.NODE_ID.eq(nodeId)).stream().findFirst();
    }

    /** Every node, alive meaning not stopped and seen within {@code nodeTimeout}. */
    public List<Node> list(Duration nodeTimeout) {
        return list(nodeTimeout, DSL.trueCondition());
    }

    private List<Node> list(Duration nodeTimeout, org.jooq.Condition where) {
        var n = DISPATCHER_NODES;
        var since = DSL.field("extract(epoch from now() - {0})", Double.class, n.LAST_SEEN_AT);
        var alive = DSL.field(n.STOPPED_AT.isNull()
                .and(n.LAST_SEEN_AT.ge(DSL.currentOffsetDateTime().minus(millis(nodeTimeout)))));
        return dsl.select(n.asterisk(), alive.as("alive"), since.as("since"))
                .from(n).where(where).orderBy(n.NODE_ID)
                .fetch(r -> new Node(r.get(n.NODE_ID), r.get(n.INCARNATION), r.get(n.HOST), r.get(n.PID),
                        r.get(n.VERSION), List.of(r.get(n.QUEUES)), List.of(r.get(n.KINDS)), r.get(n.STARTED_AT),
                        r.get(n.LAST_SEEN_AT), r.get(n.STOPPED_AT), r.get("alive", Boolean.class),
                        r.get("since", Double.class), r.get(n.HEALTH), r.get(n.HEALTH_AT)));
    }

    /** Deletes a node row that is not alive; false when it is alive or unknown. */
    public boolean forget(String nodeId, Duration nodeTimeout) {
        var n = DISPATCHER_NODES;
        return dsl.deleteFrom(n).where(n.NODE_ID.eq(nodeId).and(n.STOPPED_AT.isNotNull()
                .or(n.LAST_SEEN_AT.lt(DSL.currentOffsetDateTime().minus(millis(nodeTimeout)))))).execute() == 1;
    }
}

package pgdispatch.store;

import static pgdispatch.store.jooq.Tables.TASKS;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import javax.sql.DataSource;
import pgdispatch.config.DatabaseUrl;
import org.jooq.DSLContext;
import org.jooq.JSONB;
import org.jooq.impl.DSL;

/**
 * Every statement that changes a task's status, owner or lease, in lifecycle order: enqueue, claim,
 * reclaim, renew, heartbeat, complete/fail, release, requeue/quarantine (reaper), recover (startup),
 * cancel, operator retry and quarantine, prune. Reading it top to bottom is reading the state machine
 * of docs/TASK_LEASES.md.
 *
 * <p>Every write of a worker is fenced: it matches {@code owner_id}, {@code lease_token} and
 * {@code status = 'running'}, so a worker whose lease was taken over changes nothing. Rows affected is
 * the answer: fewer than asked means refused (the caller learns which). Every transition writes its
 * {@code task_event_log} row in the same statement, except a plain claim and its success: those reserve
 * their event ids on the task row, and the {@code task_events} view shows the rows from it until V13's
 * trigger writes them to the log when the row changes again. Time is always the database's {@code now()}.
 *
 * <p>The batched statements are PostgreSQL text (data-modifying CTEs over {@code unnest} arrays, one
 * round trip per batch): beyond what jOOQ's DSL expresses readably. Single-row operator actions use
 * the generated jOOQ classes.
 */
public final class TaskStore {
    /** The advisory lock key that lets one reaper sweep at a time cluster-wide ("pgdisp1" as bytes). */
    public static final long REAPER_LOCK = 0x7067646973703162L;

    /** Longest error text kept in {@code last_error} and events. */
    public static final int MAX_ERROR_CHARS = 4000;

    private final DataSource ds;
    private final String schema;
    private final DSLContext dsl;

    /** Over {@code db}'s pool, in its schema. */
    public TaskStore(Database db) {
        this(db.dataSource(), db.url().schema());
    }

    /**
     * Over {@code ds}, naming tables in {@code schema} where jOOQ builds the statement (enqueue, operator
     * actions); null leaves them unqualified. The batched statements are SQL text with unqualified
     * names: they need connections whose search_path leads to pgdispatch's schema (a node's own pool).
     */
    public TaskStore(DataSource ds, String schema) {
        this.ds = ds;
        this.schema = schema;
        this.dsl = Database.dsl(ds, schema);
    }

    /** Over {@code ds} whose connections' search_path leads to pgdispatch's tables (as {@link Database#open} sets it). */
    public TaskStore(DataSource ds) {
        this(ds, null);
    }

    /** The schema this store names its tables in (null: the connections' search_path decides). */
    public String schema() {
        return schema;
    }

    // ---------------------------------------------------------------- enqueue: (none) -> pending

    /**
     * (none) → pending. Inserts {@code task}. With an idempotency key already used: the existing task's id
     * when its kind, queue and payload are the same (a retried request: the first enqueue wins, its row is
     * not changed); {@link IdempotencyConflictException} naming the existing task when they differ.
     */
    public long enqueue(NewTask task) {
        if (task.unique() != null) return enqueueReporting(task).id();
        return enqueue(dsl, schema, task);
    }

    /**
     * The same, inside the caller's transaction on {@code connection}, naming the table in this store's
     * schema ({@code public} when it has none): the caller's search_path does not matter.
     */
    public long enqueue(Connection connection, NewTask task) {
        if (task.unique() != null) return enqueueReporting(connection, task).id();
        String s = schema == null ? DatabaseUrl.DEFAULT_SCHEMA : schema;
        return enqueue(Database.dsl(connection, s), s, task);
    }

    /** {@code schema}: where pgdispatch_enqueue lives; null = the connection's search_path finds it. */
    private static long enqueue(DSLContext ctx, String schema, NewTask t) {
        if (t.idempotencyKey() != null) return enqueueIdempotent(ctx, schema, t);
        Dependencies d = t.dependencies();
        try {
            return ctx.insertInto(TASKS)
                    .set(TASKS.QUEUE, t.queue())
                    .set(TASKS.KIND, t.kind())
                    .set(TASKS.PAYLOAD, JSONB.valueOf(t.payloadJson()))
                    .set(TASKS.PRIORITY, t.priority())
                    .set(TASKS.MAX_ATTEMPTS, t.maxAttempts())
                    .set(TASKS.RUN_AT, t.runAt() == null ? DSL.currentOffsetDateTime() : DSL.val(t.runAt()))
                    .set(TASKS.DEPENDS_ON, d == null ? null : d.array())
                    .set(TASKS.ON_DEPENDENCY_FAILURE, d == null ? DependencyFailure.CANCEL.sql() : d.onFailure().sql())
                    .returning(TASKS.ID).fetchOne(TASKS.ID);
        } catch (org.jooq.exception.DataAccessException e) {
            DependencyRefusedException refused = DependencyRefusedException.from(e);
            if (refused != null) throw refused;
            throw e;
        }
    }

    // The SQL contract's pgdispatch_enqueue (V10_1) decides, so a producer in plain SQL and this client
    // follow one rule: insert, or the existing id for the same content, or a refusal (23505, DETAIL
    // existing_task_id=N) for different content. It reads the conflicting row in a statement of its own,
    // so a concurrent producer's commit is seen (docs/SQL_CONTRACT.md).
    private static long enqueueIdempotent(DSLContext ctx, String schema, NewTask t) {
        org.jooq.Name fn = schema == null ? DSL.name("pgdispatch_enqueue") : DSL.name(schema, "pgdispatch_enqueue");
        try {
            Dependencies d = t.dependencies();
            return ctx.fetchValue(DSL.function(fn, Long.class, DSL.val(t.kind()),
                    DSL.field("{0}::jsonb", Object.class, DSL.val(t.payloadJson())), DSL.val(t.queue()),
                    DSL.val(t.priority()), DSL.val(t.runAt(), OffsetDateTime.class), DSL.val(t.maxAttempts()),
                    DSL.val(t.idempotencyKey()), DSL.val(d == null ? null : d.array(), Long[].class),
                    DSL.val(d == null ? DependencyFailure.CANCEL.sql() : d.onFailure().sql())));
        } catch (org.jooq.exception.DataAccessException e) {
            DependencyRefusedException refused = DependencyRefusedException.from(e);
            if (refused != null) throw refused;
            SQLException sql = e.getCause(SQLException.class);
            if (sql instanceof org.postgresql.util.PSQLException pe && "23505".equals(pe.getSQLState())
                    && pe.getServerErrorMessage() != null && pe.getServerErrorMessage().getDetail() != null
                    && pe.getServerErrorMessage().getDetail().startsWith("existing_task_id=")) {
                long existing = Long.parseLong(pe.getServerErrorMessage().getDetail().substring("existing_task_id=".length()));
                throw new IdempotencyConflictException(t.idempotencyKey(), existing, pe.getServerErrorMessage().getMessage());
            }
            throw e;
        }
    }

    /**
     * What an enqueue did: {@code created}, or found the task already holding its idempotency key or its
     * unique key ({@code conflict} names which; {@code existingStatus} is that task's status then; for a
     * task created, its status: pending, or waiting / cancelled for a task with dependencies).
     */
    public record Enqueued(long id, boolean created, String conflict, TaskStatus existingStatus) {
        public static final String IDEMPOTENCY_KEY = "idempotency_key";
        public static final String UNIQUE_KEY = "unique_key";
    }

    // The key is computed by the database (pgdispatch_unique_key: one rule for Java and plain SQL) and
    // returned, so the look-up below uses the same key even when its time bucket has turned meanwhile.
    // ON CONFLICT DO NOTHING without a target: both the idempotency and the unique index count; a
    // concurrent insert of the same key is waited for, then this one does nothing. {s} is the schema
    // prefix: empty on the store's own pool (its search_path), the schema on a caller's connection.
    private static final String ENQUEUE_REPORTING = """
            WITH k AS (
                SELECT CASE WHEN :has_unique THEN {s}pgdispatch_unique_key(:kind, :unique_queue, :payload::jsonb,
                           :unique_fields::text[], :unique_period_ms::bigint * interval '1 millisecond') END AS key
            ), ins AS (
                INSERT INTO {s}tasks (queue, kind, payload, priority, max_attempts, idempotency_key, run_at,
                                      unique_key, unique_states, depends_on, on_dependency_failure)
                SELECT :queue, :kind, :payload::jsonb, :priority, :max_attempts, :idempotency_key,
                       coalesce(:run_at::timestamptz, now()), k.key,
                       CASE WHEN k.key IS NOT NULL THEN :unique_states::text[] END,
                       :depends_on::bigint[], :on_dependency_failure
                  FROM k
                ON CONFLICT DO NOTHING
                RETURNING id, status
            )
            SELECT (SELECT id FROM ins) AS id, (SELECT status FROM ins) AS status, (SELECT key FROM k) AS key
            """;

    // A new statement, so a conflicting row committed while the insert waited for it is visible here.
    private static final String FIND_HOLDER = """
            SELECT id, status, 'idempotency_key' AS conflict FROM {s}tasks WHERE idempotency_key = :idempotency_key
            UNION ALL
            SELECT id, status, 'unique_key' FROM {s}tasks WHERE unique_key = :key AND status = ANY(unique_states)
            LIMIT 1
            """;

    private static final Map<String, NamedSql[]> ENQUEUE_REPORTING_BY_SCHEMA = new java.util.concurrent.ConcurrentHashMap<>();

    /** The two statements with their names qualified by {@code schema} ("" for unqualified). */
    private static NamedSql[] enqueueReportingSql(String schema) {
        return ENQUEUE_REPORTING_BY_SCHEMA.computeIfAbsent(schema, s -> {
            String prefix = s.isEmpty() ? "" : "\"" + s.replace("\"", "\"\"") + "\".";
            return new NamedSql[] {NamedSql.of(ENQUEUE_REPORTING.replace("{s}", prefix)),
                    NamedSql.of(FIND_HOLDER.replace("{s}", prefix))};
        });
    }

    /**
     * (none) → pending, or the task that holds {@code task}'s idempotency key or unique key, and which
     * of the two happened. When the holder leaves its key's statuses between the refused insert and the
     * look-up, the insert is tried again (at most three times).
     */
    public Enqueued enqueueReporting(NewTask task) {
        try (Connection c = ds.getConnection()) {
            return enqueueReporting(c, task, schema == null ? "" : schema);
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }

    /**
     * The same, inside the caller's transaction on {@code connection}, naming the table in this store's
     * schema ({@code public} when it has none): the caller's search_path does not matter.
     */
    public Enqueued enqueueReporting(Connection connection, NewTask task) {
        return enqueueReporting(connection, task, schema == null ? DatabaseUrl.DEFAULT_SCHEMA : schema);
    }

    private static Enqueued enqueueReporting(Connection connection, NewTask t, String schema) {
        if (t.unique() == null) {
            throw new IllegalArgumentException("enqueueReporting is for unique tasks (NewTask.unique); without a unique key"
                    + " use enqueue, whose idempotency rule compares the content (pgdispatch_enqueue)");
        }
        NamedSql[] sql = enqueueReportingSql(schema);
        Map<String, Object> v = new HashMap<>();
        v.put("queue", t.queue());
        v.put("kind", t.kind());
        v.put("payload", t.payloadJson());
        v.put("priority", t.priority());
        v.put("max_attempts", t.maxAttempts());
        v.put("idempotency_key", t.idempotencyKey());
        v.put("run_at", t.runAt());
        UniqueKey u = t.unique();
        v.put("has_unique", u != null);
        v.put("unique_queue", u != null && u.byQueue() ? t.queue() : null);
        v.put("unique_fields", u == null ? null : u.fieldsArgument());
        v.put("unique_period_ms", u == null || u.period() == null ? null : u.period().toMillis());
        v.put("unique_states", u == null ? null : u.states());
        Dependencies d = t.dependencies();
        v.put("depends_on", d == null ? null : d.array());
        v.put("on_dependency_failure", d == null ? DependencyFailure.CANCEL.sql() : d.onFailure().sql());
        try {
            for (int attempt = 0; attempt < 3; attempt++) {
                String key;
                try (PreparedStatement ps = sql[0].prepare(connection, v); ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    long id = rs.getLong("id");
                    if (!rs.wasNull()) return new Enqueued(id, true, null, TaskStatus.of(rs.getString("status")));
                    key = rs.getString("key");
                }
                Map<String, Object> f = new HashMap<>();
                f.put("idempotency_key", t.idempotencyKey());
                f.put("key", key);
                try (PreparedStatement ps = sql[1].prepare(connection, f); ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        return new Enqueued(rs.getLong("id"), false, rs.getString("conflict"), TaskStatus.of(rs.getString("status")));
                    }
                }
            }
        } catch (SQLException e) {
            DependencyRefusedException refused = DependencyRefusedException.from(e);
            if (refused != null) throw refused;
            throw new StoreException(e);
        }
        throw new IllegalStateException("enqueue of kind " + t.kind() + ": refused three times by a key whose holder"
                + " then disappeared (a task changing status at that very moment each time)");
    }

    private static final NamedSql ENQUEUE_MANY = NamedSql.of("""
            INSERT INTO tasks (queue, kind, payload, priority, max_attempts)
            SELECT :queue, :kind, p.body::jsonb, :priority, :max_attempts
              FROM unnest(:payloads::text[]) WITH ORDINALITY AS p(body, n)
             ORDER BY p.n
            RETURNING id
            """);

    /**
     * (none) → pending, many tasks of one kind and queue in one statement (bulk loads, benchmarks, the
     * chaos workload). Returns the new ids in the order of {@code payloadsJson}.
     */
    public List<Long> enqueueMany(String queue, String kind, List<String> payloadsJson, int priority, int maxAttempts) {
        return query(ENQUEUE_MANY, Map.of("queue", queue, "kind", kind, "priority", priority,
                "max_attempts", maxAttempts, "payloads", payloadsJson.toArray(String[]::new)), rs -> {
            List<Long> ids = new ArrayList<>(payloadsJson.size());
            while (rs.next()) ids.add(rs.getLong(1));
            return ids;
        });
    }

    // ---------------------------------------------------------------- claim: pending | expired running -> running

    // :take_over false (a custom plan sees the value) reduces the expired set to a one-time filter: no
    // scan of the running rows. Why two candidate sets: one OR over (pending and due) | (running and expired) defeats the partial
    // claim index. The due set is read per queue through a LATERAL subquery so each queue walks
    // tasks_claim_idx in (priority, run_at, id) order and stops after :limit rows, whatever the backlog
    // (no sort of every due row: the lock-then-limit trap). Candidates locked here but not picked stay
    // locked only until this statement's transaction commits.
    // Why a candidate cannot be claimed, or null: a counter the claim would push past what V8 allows (a
    // row inserted by SQL at its type's maximum used to make every claim of the node fail with "integer
    // out of range", in all its queues), or a payload whose stored size alone exceeds the bound (one
    // 150 MB row used to kill the claimer with OutOfMemoryError). Such a row is quarantined by the claim
    // itself, with the reason, and the rest of the batch flows; a counter at the very maximum is stored
    // one below it, since any update of the row must pass V8's check (the reason keeps the value found).
    // pg_column_size reads the stored
    // (possibly compressed) size without detoasting; a payload that compresses below the bound is caught
    // after the claim, from its text bounded by left() (claimDue).
    // Cluster-wide concurrency limits (V11_4) on the kinds and queues this claim serves. A claim that
    // holds no limit's lock (locked false) takes no task a limit covers: a limit set since its node
    // last looked admits nothing until the node locks it (ClaimRequest.lockedLimits, from its next claim
    // on). The limits are applied in `picked`, after each queue's walk of the claim index: a filter
    // inside that walk changes the planner's estimate of it (ClaimPlanTest: Seq Scan + Sort).
    private static final String CLAIM_LIMITS = """
            ), limits AS (
                SELECT l.scope, l.name, false AS locked, 0 AS room FROM concurrency_limits l
                 WHERE (l.scope = 'kind' AND l.name = ANY(:kinds::text[]))
                    OR (l.scope = 'queue' AND l.name = ANY(:queues::text[]))
            """;

    // The same for a claim that took the advisory lock of each limit in :locked first, in the same
    // transaction (claimDue): every other claimer of those limits waits for this one's commit, and this
    // statement's snapshot, taken after the locks, sees every claim they committed, so counting the
    // running rows here is exact: no over-claim however many claimers race.
    private static final String CLAIM_LIMITS_LOCKED = """
            ), limits AS (
                SELECT l.scope, l.name, l.scope || ':' || l.name = ANY(:locked::text[]) AS locked,
                       l.max_running - (SELECT count(*) FROM tasks x
                                         WHERE x.status = 'running'
                                           AND CASE l.scope WHEN 'kind' THEN x.kind = l.name ELSE x.queue = l.name END) AS room
                  FROM concurrency_limits l
                 WHERE (l.scope = 'kind' AND l.name = ANY(:kinds::text[]))
                    OR (l.scope = 'queue' AND l.name = ANY(:queues::text[]))
            """;

    private static final String CLAIM_PICK = """
            ), picked AS (
                SELECT c.id, c.prev_owner, c.poison
                  FROM (SELECT * FROM expired UNION ALL SELECT * FROM due UNION ALL SELECT * FROM compensate) c
                 WHERE NOT EXISTS (SELECT 1 FROM limits l WHERE (l.scope = 'kind' AND l.name = c.kind)
                                                             OR (l.scope = 'queue' AND l.name = c.queue))
                 ORDER BY c.priority, c.run_at, c.id
                 LIMIT :limit
            """;

    // A locked limit admits the first (max_running - running) of its candidates, ranked per kind and per
    // queue; an expired lease taken over is running already: it needs no room. (claimDue leaves the
    // kinds and queues of full limits out of :kinds and :queues, so their candidates are not even read
    // and cannot crowd other kinds out of the batch.)
    private static final String CLAIM_PICK_LOCKED = """
            ), picked AS (
                SELECT c.id, c.prev_owner, c.poison
                  FROM (SELECT c.*,
                               row_number() OVER (PARTITION BY c.kind, c.prev_owner IS NULL
                                                  ORDER BY c.priority, c.run_at, c.id) AS kind_rank,
                               row_number() OVER (PARTITION BY c.queue, c.prev_owner IS NULL
                                                  ORDER BY c.priority, c.run_at, c.id) AS queue_rank
                          FROM (SELECT * FROM expired UNION ALL SELECT * FROM due UNION ALL SELECT * FROM compensate) c) c
                 WHERE NOT EXISTS (SELECT 1 FROM limits l
                                    WHERE ((l.scope = 'kind' AND l.name = c.kind) OR (l.scope = 'queue' AND l.name = c.queue))
                                      AND (NOT l.locked OR (c.prev_owner IS NULL
                                           AND CASE l.scope WHEN 'kind' THEN c.kind_rank ELSE c.queue_rank END > l.room)))
                 ORDER BY c.priority, c.run_at, c.id
                 LIMIT :limit
            """;

    // After the locks: the locked limits with no room left now (exact, as in CLAIM_LIMITS_LOCKED).
    private static final NamedSql FULL_LIMITS = NamedSql.of("""
            SELECT l.scope, l.name FROM concurrency_limits l
             WHERE l.scope || ':' || l.name = ANY(:keys::text[])
               AND l.max_running <= (SELECT count(*) FROM tasks x
                                      WHERE x.status = 'running'
                                        AND CASE l.scope WHEN 'kind' THEN x.kind = l.name ELSE x.queue = l.name END)
            """);

    /** "pglm": the class id of the claim's per-limit advisory locks (the object id is hashtext(key)). */
    static final int LIMIT_LOCK_CLASS = 0x70676C6D;

    private static final NamedSql LOCK_LIMITS = NamedSql.of("""
            SELECT count(*) FROM (
                SELECT pg_advisory_xact_lock(:lock_class, s.h)
                  FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(:keys::text[]) AS k ORDER BY 1) s) x
            """);

    private static final String POISON = """
                       CASE WHEN t.attempts >= 2147483646
                                 THEN 'attempts=' || t.attempts || ' leaves no room for another attempt (V8: below 2147483647)'
                            WHEN t.lease_token >= 9223372036854775806
                                 THEN 'lease_token=' || t.lease_token || ' leaves no room for another lease (V8: below 9223372036854775807)'
                            WHEN t.requeue_count >= 2147483647
                                 THEN 'requeue_count=' || t.requeue_count || ' is out of range (V8: below 2147483647)'
                            WHEN pg_column_size(t.payload) > :max_payload
                                 THEN 'payload of ' || pg_column_size(t.payload) || ' bytes stored exceeds TASK_MAX_PAYLOAD_BYTES=' || :max_payload
                       END""";

    static final String CLAIM_TEXT = """
            WITH lease AS (
                SELECT * FROM unnest(:kinds::text[], :lease_ms::bigint[]) AS l(kind, lease_ms)
            """ + CLAIM_LIMITS + """
            ), expired AS (
                SELECT t.id, t.priority, t.run_at, t.kind, t.queue, t.owner_id AS prev_owner,""" + POISON + """
             AS poison
                  FROM tasks t
                 WHERE :take_over AND t.status = 'running' AND t.lease_expires_at < now()
                   -- never this node's own row: it holds the task and its renewer renews it (after an outage,
                   -- before anything else); an orphan of its own is reclaimed or left to the reapers (issue 11 item 5)
                   AND t.owner_id IS DISTINCT FROM :owner
                   AND t.requeue_count < :max_requeue
                   AND t.queue = ANY(:queues::text[]) AND t.kind = ANY(:kinds::text[])
                   AND (NOT t.compensating OR t.kind = ANY(:compensating_kinds::text[]))
                   -- a paused queue's expired leases wait for the reaper (back to pending) and the resume
                   AND NOT EXISTS (SELECT 1 FROM dispatcher_queues p WHERE p.queue = t.queue AND p.paused)
                   AND NOT EXISTS (SELECT 1 FROM limits l WHERE NOT l.locked AND ((l.scope = 'kind' AND l.name = t.kind)
                                                                               OR (l.scope = 'queue' AND l.name = t.queue)))
                 ORDER BY t.priority, t.run_at, t.id
                 LIMIT :limit
                   FOR UPDATE OF t SKIP LOCKED
            ), due AS (
                SELECT d.id, d.priority, d.run_at, d.kind, d.queue, NULL::text AS prev_owner, d.poison
                  -- paused queues (dispatcher_queues) are read here, in the claim itself: a pause holds
                  -- from every node's next claim on
                  FROM (SELECT u.name FROM unnest(:queues::text[]) AS u(name)
                         WHERE NOT EXISTS (SELECT 1 FROM dispatcher_queues p WHERE p.queue = u.name AND p.paused)) AS q
                 CROSS JOIN LATERAL (
                    SELECT t.id, t.priority, t.run_at, t.kind, t.queue,""" + POISON + """
             AS poison
                      FROM tasks t
                     WHERE t.status = 'pending' AND t.queue = q.name AND t.run_at <= now()
                       -- a legacy run_at of '-infinity' (before V9's NOT VALID check) would fail that check
                       -- on this UPDATE and take the batch down: left pending, shown to operators
                       AND t.run_at > '-infinity'
                       AND t.kind = ANY(:kinds::text[])
                       -- legacy rows from before V3's NOT VALID checks would fail them on this UPDATE and
                       -- take the whole batch down with them: leave them pending, visible to operators.
                       -- NOT IN, not = 'object': the planner guesses 0.5% for equality on an expression,
                       -- which made a batch look like the whole backlog and chose Seq Scan + Sort
                       -- (ClaimPlanTest); this form is guessed at ~97% (payload is NOT NULL)
                       AND jsonb_typeof(t.payload) NOT IN ('array', 'string', 'number', 'boolean', 'null')
                       AND t.priority BETWEEN -1000 AND 1000
                       AND t.max_attempts BETWEEN 1 AND 1000 AND t.attempts >= 0 AND t.requeue_count >= 0
                     ORDER BY t.priority, t.run_at, t.id
                     LIMIT :limit
                       FOR UPDATE OF t SKIP LOCKED) d
            ), compensate AS (
                -- compensation steps waiting (V10_5), for kinds whose handler here declares compensate(); those
                -- of a paused queue wait like its pending tasks, and a kind left out of the claimed kinds (by a
                -- full limit) is not read: it would take a place in `picked` and then find no lease (issue 15)
                SELECT t.id, t.priority, t.run_at, t.kind, t.queue, NULL::text AS prev_owner,""" + POISON + """
             AS poison
                  FROM tasks t
                 WHERE t.status = 'compensating' AND t.queue = ANY(:queues::text[]) AND t.run_at <= now()
                   AND t.kind = ANY(:compensating_kinds::text[]) AND t.kind = ANY(:kinds::text[])
                   AND NOT EXISTS (SELECT 1 FROM dispatcher_queues p WHERE p.queue = t.queue AND p.paused)
                 ORDER BY t.priority, t.run_at, t.id
                 LIMIT :limit
                   FOR UPDATE OF t SKIP LOCKED
            """ + CLAIM_PICK + """
            ), claimed AS (
                UPDATE tasks t
                   SET status            = CASE WHEN p.poison IS NULL THEN 'running' ELSE 'quarantined' END,
                       owner_id          = :owner,
                       lease_token       = CASE WHEN p.poison IS NULL THEN t.lease_token + 1
                                                  ELSE least(t.lease_token, 9223372036854775806) END,
                       lease_expires_at  = CASE WHEN p.poison IS NULL THEN now() + l.lease_ms * interval '1 millisecond' END,
                       last_heartbeat_at = now(),  -- the attempt's progress clock starts at its claim
                       progress_count    = 0,
                       progress_interval_ms = NULL,
                       renew_count       = 0,
                       extension_count   = 0,
                       quiet_until       = NULL,
                       attempts          = CASE WHEN p.poison IS NULL THEN t.attempts + 1 ELSE least(t.attempts, 2147483646) END,
                       requeue_count     = CASE WHEN p.poison IS NOT NULL THEN least(t.requeue_count, 2147483646)
                                                WHEN p.prev_owner IS NULL THEN t.requeue_count ELSE t.requeue_count + 1 END,
                       started_at        = now(),
                       finished_at       = CASE WHEN p.poison IS NULL THEN NULL ELSE now() END,
                       last_error        = CASE WHEN p.poison IS NULL THEN t.last_error ELSE 'quarantined: ' || p.poison END,
                       compensable       = t.kind = ANY(:compensating_kinds::text[]),
                       -- a plain claim writes no event: it reserves the id of its 'claimed' row, which the
                       -- task_events view shows from this row until V13's trigger writes it to the log
                       claim_event_id    = CASE WHEN p.poison IS NULL AND p.prev_owner IS NULL AND NOT t.compensating
                                                THEN nextval('task_event_log_id_seq') END,
                       updated_at        = now()
                  FROM picked p, lease l
                 WHERE t.id = p.id AND l.kind = t.kind
                RETURNING t.id, t.queue, t.kind,
                          -- at most one character past the bound reaches the node's heap (see POISON)
                          CASE WHEN p.poison IS NULL THEN left(t.payload::text, :max_payload + 1) END AS payload,
                          t.attempts, t.max_attempts, t.lease_token, t.progress::text AS progress, t.requeue_count,
                          l.lease_ms, p.prev_owner, p.poison, t.compensating, t.claim_event_id
            ), ev AS (
                -- the other claims (a take-over, a compensation step, a quarantine) write their row
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT c.id, CASE WHEN c.poison IS NOT NULL THEN 'quarantined'
                                  WHEN c.compensating THEN 'compensation_started' ELSE 'claimed' END, :owner, c.lease_token,
                       CASE WHEN c.poison IS NOT NULL THEN jsonb_build_object('reason', c.poison, 'by', 'claim')
                            WHEN c.prev_owner IS NULL THEN jsonb_build_object('attempt', c.attempts)
                            ELSE jsonb_build_object('attempt', c.attempts, 'took_over_from', c.prev_owner,
                                                    'reason', 'lease expired', 'requeue_count', c.requeue_count) END
                  FROM claimed c
                 WHERE c.claim_event_id IS NULL
            )
            SELECT * FROM claimed
            """;
    // what the takeover_no_requeue mutant replaces (it named a text the claim no longer had, so every
    // statement of a node running it failed at class load; MutantScenariosTest runs it now)
    private static final String TAKEOVER_REQUEUE = "WHEN p.prev_owner IS NULL THEN t.requeue_count ELSE t.requeue_count + 1 END";
    private static final NamedSql CLAIM = NamedSql.of(Mutant.seed(Mutant.TAKEOVER_NO_REQUEUE, CLAIM_TEXT,
            TAKEOVER_REQUEUE, "WHEN p.prev_owner IS NULL THEN t.requeue_count ELSE t.requeue_count END"));
    // the limited claim carries the same seeded mutant (scripts/mutants), so a mutant run covers both
    private static final NamedSql CLAIM_LIMITED = NamedSql.of(Mutant.seed(Mutant.TAKEOVER_NO_REQUEUE,
            CLAIM_TEXT.replace(CLAIM_LIMITS, CLAIM_LIMITS_LOCKED).replace(CLAIM_PICK, CLAIM_PICK_LOCKED),
            TAKEOVER_REQUEUE, "WHEN p.prev_owner IS NULL THEN t.requeue_count ELSE t.requeue_count END"));

    /**
     * pending and due, or running with an expired lease and requeue budget left → running, owned by
     * {@code r.owner()} with a new lease token. Two claimers never get the same row (row locks, SKIP
     * LOCKED). Empty list: nothing due for these queues and kinds. A candidate that cannot be claimed
     * (see POISON; or a payload over {@code r.maxPayloadBytes()} once read) → quarantined with the reason
     * in last_error and a quarantined event, and left out of the list.
     */
    public List<ClaimedTask> claimDue(ClaimRequest r) {
        List<ClaimedTask> out = new ArrayList<>();
        Map<Long, String> unusable = new LinkedHashMap<>();
        Rows<Void> read = rs -> {
            ClaimedRows rows = new ClaimedRows(rs);
            int poisonColumn = rs.findColumn("poison");
            while (rs.next()) {
                String poison = rs.getString(poisonColumn);
                if (poison != null) {
                    unusable.put(rs.getLong(rows.id), null); // quarantined by the claim itself
                    continue;
                }
                ClaimedTask t = rows.task();
                if (StorableText.exceedsUtf8(t.payloadJson(), r.maxPayloadBytes())) {
                    unusable.put(t.id(), "payload of more than " + r.maxPayloadBytes()
                            + " bytes exceeds TASK_MAX_PAYLOAD_BYTES=" + r.maxPayloadBytes() + " (stored compressed below it)");
                } else {
                    out.add(t);
                }
            }
            return null;
        };
        if (r.lockedLimits().isEmpty()) query(CLAIM, claimParams(r), read);
        else claimLimited(r, read);
        // rare: a payload that compresses below the bound but is larger as text; it is ours (just claimed)
        unusable.forEach((id, why) -> {
            if (why != null) update(QUARANTINE_CLAIMED, Map.of("id", id, "owner", r.owner(), "reason", why));
        });
        return out;
    }

    /**
     * The claim of {@code r} in one transaction with the advisory locks of its limits, taken first in a
     * statement of their own (the claim's snapshot must come after them); the kinds and queues of full
     * limits are left out of the claim altogether.
     */
    private void claimLimited(ClaimRequest r, Rows<Void> read) {
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try {
                String[] keys = r.lockedLimits().toArray(String[]::new);
                try (PreparedStatement ps = LOCK_LIMITS.prepare(c, Map.of("lock_class", LIMIT_LOCK_CLASS, "keys", keys));
                     ResultSet rs = ps.executeQuery()) {
                    rs.next();
                }
                Set<String> fullKinds = new HashSet<>();
                Set<String> fullQueues = new HashSet<>();
                try (PreparedStatement ps = FULL_LIMITS.prepare(c, Map.of("keys", keys)); ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) (rs.getString(1).equals("kind") ? fullKinds : fullQueues).add(rs.getString(2));
                }
                Map<String, Duration> leases = new HashMap<>(r.leaseByKind());
                leases.keySet().removeAll(fullKinds);
                List<String> queues = r.queues().stream().filter(q -> !fullQueues.contains(q)).toList();
                if (!leases.isEmpty() && !queues.isEmpty()) {
                    ClaimRequest open = new ClaimRequest(r.owner(), queues, leases, r.limit(), r.maxRequeue(),
                            r.takeOverExpired(), r.maxPayloadBytes(), r.compensatingKinds(), r.lockedLimits());
                    try (PreparedStatement ps = CLAIM_LIMITED.prepare(c, claimParams(open)); ResultSet rs = ps.executeQuery()) {
                        read.read(rs);
                    }
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            } finally {
                c.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }

    private static final NamedSql QUARANTINE_CLAIMED = NamedSql.of("""
            WITH upd AS (
                UPDATE tasks t
                   SET status = 'quarantined', finished_at = now(), updated_at = now(), lease_expires_at = NULL,
                       attempts = greatest(t.attempts - 1, 0), last_error = 'quarantined: ' || :reason::text
                 WHERE t.id = :id AND t.owner_id = :owner AND t.status = 'running'
                RETURNING t.id, t.owner_id, t.lease_token
            )
            INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
            SELECT u.id, 'quarantined', u.owner_id, u.lease_token, jsonb_build_object('reason', :reason::text, 'by', 'claim')
              FROM upd u
            """);

    /**
     * The plan of {@link #claimDue} for {@code r} as PostgreSQL runs it ({@code EXPLAIN ANALYZE}), in a
     * transaction that is rolled back: nothing is claimed (the benchmark and docs/PERFORMANCE.md).
     */
    public List<String> explainClaim(ClaimRequest r) {
        return explain(r.lockedLimits().isEmpty() ? CLAIM : CLAIM_LIMITED, claimParams(r));
    }

    /** {@code EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)} of {@code sql}, run in a transaction that is rolled back. */
    List<String> explain(NamedSql sql, Map<String, ?> values) {
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = sql.prefixed("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ").prepare(c, values);
                 ResultSet rs = ps.executeQuery()) {
                List<String> plan = new ArrayList<>();
                while (rs.next()) plan.add(rs.getString(1));
                return plan;
            } finally {
                c.rollback();
                c.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }

    private static Map<String, Object> claimParams(ClaimRequest r) {
        Map<String, Object> v = leaseParams(r.leaseByKind());
        v.put("max_requeue", r.maxRequeue());
        v.put("queues", r.queues().toArray(String[]::new));
        v.put("limit", r.limit());
        v.put("owner", r.owner());
        v.put("take_over", r.takeOverExpired());
        v.put("max_payload", r.maxPayloadBytes());
        v.put("compensating_kinds", r.compensatingKinds().toArray(String[]::new));
        v.put("locked", r.lockedLimits().toArray(String[]::new));
        return v;
    }

    /**
     * Reads claimed rows into {@link ClaimedTask}s: the columns are looked up by name once per result set,
     * not once per row and column, and a batch of one kind shares one lease {@code Duration}.
     */
    private static final class ClaimedRows {
        private final ResultSet rs;
        final int id, queue, kind, payload, attempts, maxAttempts, leaseToken, progress, requeueCount, leaseMs, prevOwner,
                compensating;
        private long lastLeaseMs = -1;
        private Duration lastLease;

        ClaimedRows(ResultSet rs) throws SQLException {
            this.rs = rs;
            id = rs.findColumn("id");
            queue = rs.findColumn("queue");
            kind = rs.findColumn("kind");
            payload = rs.findColumn("payload");
            attempts = rs.findColumn("attempts");
            maxAttempts = rs.findColumn("max_attempts");
            leaseToken = rs.findColumn("lease_token");
            progress = rs.findColumn("progress");
            requeueCount = rs.findColumn("requeue_count");
            leaseMs = rs.findColumn("lease_ms");
            prevOwner = rs.findColumn("prev_owner");
            compensating = rs.findColumn("compensating");
        }

        /** The current row. */
        ClaimedTask task() throws SQLException {
            long ms = rs.getLong(leaseMs);
            if (ms != lastLeaseMs) {
                lastLease = Duration.ofMillis(ms);
                lastLeaseMs = ms;
            }
            return new ClaimedTask(rs.getLong(id), rs.getString(queue), rs.getString(kind), rs.getString(payload),
                    rs.getInt(attempts), rs.getInt(maxAttempts), rs.getLong(leaseToken), rs.getString(progress),
                    rs.getInt(requeueCount), lastLease, rs.getString(prevOwner), rs.getBoolean(compensating));
        }
    }

    /** {@code :kinds} and {@code :lease_ms}, the parallel arrays the claim statements unnest into (kind, lease). */
    private static Map<String, Object> leaseParams(Map<String, Duration> leaseByKind) {
        String[] kinds = leaseByKind.keySet().toArray(String[]::new);
        Long[] leaseMs = new Long[kinds.length];
        for (int i = 0; i < kinds.length; i++) leaseMs[i] = leaseByKind.get(kinds[i]).toMillis();
        Map<String, Object> v = new HashMap<>();
        v.put("kinds", kinds);
        v.put("lease_ms", leaseMs);
        return v;
    }

    // ---------------------------------------------------------------- reclaim: running (mine, unknown) -> running (mine)

    private static final NamedSql RECLAIM = NamedSql.of("""
            WITH lease AS (
                SELECT * FROM unnest(:kinds::text[], :lease_ms::bigint[]) AS l(kind, lease_ms)
            ), mine AS (
                SELECT t.id FROM tasks t
                 WHERE t.status = 'running' AND t.owner_id = :owner AND NOT (t.id = ANY(:held::bigint[]))
                   FOR UPDATE OF t SKIP LOCKED
            ), claimed AS (
                UPDATE tasks t
                   SET lease_token = t.lease_token + 1,
                       lease_expires_at = now() + l.lease_ms * interval '1 millisecond',
                       last_heartbeat_at = now(),  -- its handler starts now
                       updated_at = now()
                  FROM mine m, lease l
                 WHERE t.id = m.id AND l.kind = t.kind
                RETURNING t.id, t.queue, t.kind, t.payload::text AS payload, t.attempts, t.max_attempts,
                          t.lease_token, t.progress::text AS progress, t.requeue_count, l.lease_ms,
                          NULL::text AS prev_owner, t.compensating
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT c.id, 'claimed', :owner, c.lease_token,
                       jsonb_build_object('attempt', c.attempts, 'reason', 'reclaimed after a lost claim response')
                  FROM claimed c
            )
            SELECT * FROM claimed
            """);

    /**
     * running, owned by {@code owner} but not among {@code heldIds} → running under a new lease token.
     * These are rows a claim committed whose response never reached the node (the connection died in
     * between): they are the node's own, so it takes them back and renews them at once rather than
     * leaving them to expire and be stolen (seed 000). Kinds without a handler here are left alone.
     */
    public List<ClaimedTask> reclaimOwned(String owner, Set<Long> heldIds, Map<String, Duration> leaseByKind) {
        Map<String, Object> v = leaseParams(leaseByKind);
        v.put("owner", owner);
        v.put("held", heldIds.toArray(Long[]::new));
        return query(RECLAIM, v, rs -> {
            List<ClaimedTask> out = new ArrayList<>();
            ClaimedRows rows = new ClaimedRows(rs);
            while (rs.next()) out.add(rows.task());
            return out;
        });
    }

    // ---------------------------------------------------------------- renew: running (mine) -> running, node heartbeat

    // One statement per node and tick, whatever the number of held leases: renew every (id, token) the
    // node presents, heartbeat the node row, and record a lease_lost event for each one not renewed.
    // Except a lease whose own outcome ended it: the completer commits an outcome and only then drops
    // the lease, so a tick that read the held set in between presents it again. Either the node knew
    // (pending: the handler had finished when the tick read the set) or the outcome committed before
    // this statement began (its event is visible here). That is no loss; had the lease really been
    // lost, the outcome's write is refused and recorded as completion_refused.
    //
    // A renewal is the node's liveness, not the task's progress: it leaves last_heartbeat_at alone
    // (issue 14). The same statement judges each held attempt by its own cadence (pgdispatch_is_stuck,
    // V10) with its kind's rule (:rule_*, joined on the kind the node presents: no extra read of the rows;
    // a kind without one is never judged here) and ends a stuck one
    // by the rule's policy: fail the attempt (retry after its back-off, :retry_ms, or failed when no
    // attempt is left) or requeue it (within :max_requeue, else quarantined). The rule is evaluated on
    // the row as the UPDATE finds it, so a heartbeat committing meanwhile is seen (the row is re-checked
    // after its lock is released) and an attempt is either renewed or judged, never both.
    private static final NamedSql RENEW = NamedSql.of("""
            WITH held AS (
                SELECT * FROM unnest(:ids::bigint[], :tokens::bigint[], :lease_ms::bigint[], :pending::boolean[],
                                     :retry_ms::bigint[], :held_kinds::text[]) AS h(id, token, lease_ms, pending, retry_ms, kind)
            ), rule AS (
                SELECT * FROM unnest(:rule_kinds::text[], :rule_factor::float8[], :rule_floor_ms::bigint[],
                                     :rule_judge_silent::boolean[], :rule_requeue::boolean[])
                              AS r(kind, factor, floor_ms, judge_silent, requeue)
            ), j AS (
                SELECT h.*, r.factor, r.floor_ms, r.judge_silent, coalesce(r.requeue, false) AS requeue
                  FROM held h LEFT JOIN rule r ON r.kind = h.kind
            ), node AS (
                UPDATE dispatcher_nodes SET last_seen_at = now()
                 WHERE node_id = :owner AND incarnation = :incarnation::uuid
                RETURNING node_id
            ), renewed AS (
                UPDATE tasks t
                   SET lease_expires_at = greatest(t.lease_expires_at, now() + j.lease_ms * interval '1 millisecond'),
                       renew_count = t.renew_count + 1
                  FROM j
                 WHERE t.id = j.id AND t.lease_token = j.token AND t.owner_id = :owner AND t.status = 'running'
                   AND (j.pending OR j.factor IS NULL
                        OR pgdispatch_is_stuck(t.last_heartbeat_at, t.quiet_until, t.progress_count, t.progress_interval_ms,
                                               j.factor, j.floor_ms, :stale_ms, j.judge_silent) IS NOT TRUE)
                RETURNING t.id
            ), stuck AS (
                UPDATE tasks t
                   SET status = CASE WHEN (j.requeue AND t.requeue_count < :max_requeue)
                                       OR (NOT j.requeue AND t.attempts < t.max_attempts) THEN 'pending'
                                     WHEN j.requeue THEN 'quarantined' ELSE 'failed' END,
                       owner_id = CASE WHEN (j.requeue AND t.requeue_count < :max_requeue)
                                         OR (NOT j.requeue AND t.attempts < t.max_attempts) THEN NULL ELSE t.owner_id END,
                       run_at = CASE WHEN j.requeue AND t.requeue_count < :max_requeue THEN now()
                                     WHEN NOT j.requeue AND t.attempts < t.max_attempts
                                         THEN now() + j.retry_ms * interval '1 millisecond'
                                     ELSE t.run_at END,
                       finished_at = CASE WHEN (j.requeue AND t.requeue_count < :max_requeue)
                                            OR (NOT j.requeue AND t.attempts < t.max_attempts) THEN NULL ELSE now() END,
                       requeue_count = t.requeue_count + CASE WHEN j.requeue AND t.requeue_count < :max_requeue THEN 1 ELSE 0 END,
                       lease_expires_at = NULL,
                       last_error = 'stuck: no progress reported for '
                                    || round(extract(epoch FROM now() - t.last_heartbeat_at)::numeric, 1) || ' s (bound '
                                    || round((pgdispatch_silence_bound_ms(t.progress_count, t.progress_interval_ms, j.factor,
                                                 j.floor_ms, :stale_ms, j.judge_silent) / 1000)::numeric, 1) || ' s, '
                                    || t.progress_count || ' reports'
                                    || CASE WHEN t.progress_interval_ms IS NULL THEN ''
                                            ELSE ', cadence ' || round((t.progress_interval_ms / 1000)::numeric, 1) || ' s' END
                                    || ')' || CASE WHEN t.progress->>'message' IS NULL THEN ''
                                                   ELSE '; last message: ' || (t.progress->>'message') END,
                       updated_at = now()
                  FROM j
                 -- only what the renewal did not take (normally nothing): no second pass over the held rows
                 WHERE j.id NOT IN (SELECT id FROM renewed) AND NOT j.pending AND j.factor IS NOT NULL
                   AND t.id = j.id AND t.lease_token = j.token AND t.owner_id = :owner AND t.status = 'running'
                   AND pgdispatch_is_stuck(t.last_heartbeat_at, t.quiet_until, t.progress_count, t.progress_interval_ms,
                                           j.factor, j.floor_ms, :stale_ms, j.judge_silent)
                RETURNING t.id, j.token, t.status, t.run_at, j.requeue, t.attempts, t.requeue_count, t.last_error,
                          extract(epoch FROM now() - t.last_heartbeat_at) * 1000 AS silence_ms,
                          pgdispatch_silence_bound_ms(t.progress_count, t.progress_interval_ms, j.factor, j.floor_ms,
                                                      :stale_ms, j.judge_silent) AS bound_ms,
                          t.progress_count, t.progress_interval_ms, t.progress->>'message' AS message
            ), stuck_ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT s.id, 'stuck', :owner, s.token,
                       jsonb_build_object('silence_ms', round(s.silence_ms), 'bound_ms', round(s.bound_ms),
                                          'cadence_ms', round(s.progress_interval_ms), 'reports', s.progress_count,
                                          'last_message', s.message,
                                          'policy', CASE WHEN s.requeue THEN 'requeue' ELSE 'fail_attempt' END,
                                          'status', s.status, 'attempt', s.attempts, 'requeue_count', s.requeue_count,
                                          'next_run_at', CASE WHEN s.status = 'pending' THEN s.run_at END)
                  FROM stuck s
            ), lost AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT h.id, 'lease_lost', :owner, h.token,
                       jsonb_build_object('status', t.status, 'current_owner', t.owner_id,
                                          'current_token', t.lease_token)
                  FROM held h LEFT JOIN tasks t ON t.id = h.id
                 WHERE h.id NOT IN (SELECT id FROM renewed) AND h.id NOT IN (SELECT id FROM stuck) AND NOT h.pending
                   AND NOT EXISTS (SELECT 1 FROM task_events e
                                    WHERE e.task_id = h.id AND e.owner_id = :owner AND e.lease_token = h.token
                                      AND (e.event IN ('succeeded', 'failed', 'retry_scheduled', 'released',
                                                       'compensated', 'compensation_failed')
                                           OR (e.event = 'quarantined' AND e.detail->>'by' = 'compensation')))
                RETURNING task_id, detail->>'status' AS status
            )
            SELECT 'renewed' AS what, id, NULL AS status FROM renewed
            UNION ALL SELECT 'lost', task_id, status FROM lost
            UNION ALL SELECT 'stuck', id, last_error FROM stuck
            UNION ALL SELECT 'node', NULL, NULL FROM node
            """);

    /**
     * running (owner, token) → running with {@code lease_expires_at} at least {@code now() + lease}, for
     * every held lease at once, plus the node's heartbeat. A lease not renewed is lost (requeued, cancelled,
     * taken over, finished): it is reported with the row's status then, and recorded as lease_lost,
     * unless its own outcome ended it (pending per {@link HeldLease#outcomePending()}, or already written
     * by this owner under this token): then it is not reported at all. With {@code rules}, an attempt whose
     * handler has gone silent past its bound is instead ended as stuck (→ pending / failed / quarantined,
     * event {@code stuck}) and reported with its error text.
     */
    public RenewResult renewHeld(String owner, String incarnation, List<HeldLease> held, StuckRules rules) {
        Long[] ids = new Long[held.size()];
        Long[] tokens = new Long[held.size()];
        Long[] leaseMs = new Long[held.size()];
        Boolean[] pending = new Boolean[held.size()];
        Long[] retryMs = new Long[held.size()];
        String[] kinds = new String[held.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = held.get(i).id();
            tokens[i] = held.get(i).leaseToken();
            leaseMs[i] = held.get(i).lease().toMillis();
            pending[i] = held.get(i).outcomePending();
            retryMs[i] = held.get(i).retryDelay().toMillis();
            kinds[i] = held.get(i).kind();
        }
        Map<String, Object> v = new HashMap<>();
        v.put("ids", ids);
        v.put("tokens", tokens);
        v.put("lease_ms", leaseMs);
        v.put("pending", pending);
        v.put("retry_ms", retryMs);
        v.put("held_kinds", kinds);
        v.put("owner", owner);
        v.put("incarnation", incarnation);
        rules.bind(v);
        return query(RENEW, v, rs -> {
            Set<Long> renewed = new HashSet<>();
            Map<Long, String> lost = new LinkedHashMap<>();
            Map<Long, String> stuck = new LinkedHashMap<>();
            boolean node = false;
            while (rs.next()) {
                switch (rs.getString("what")) {
                    case "renewed" -> renewed.add(rs.getLong("id"));
                    case "lost" -> lost.put(rs.getLong("id"), String.valueOf(rs.getString("status")));
                    case "stuck" -> stuck.put(rs.getLong("id"), rs.getString("status"));
                    default -> node = true;
                }
            }
            return new RenewResult(renewed, lost, node, stuck);
        });
    }

    /** The same without judging any attempt stuck (kinds without a rule). */
    public RenewResult renewHeld(String owner, String incarnation, List<HeldLease> held) {
        return renewHeld(owner, incarnation, held, StuckRules.NONE);
    }

    // ---------------------------------------------------------------- heartbeat: running (mine) -> running, progress saved

    // The handler's progress report: the only write besides the claim that moves last_heartbeat_at. The
    // cadence is an exponential moving average of the intervals between reports (weight 0.3 on the
    // newest: a few slow reports raise it, one burst does not halve it); the interval from the claim to
    // the first report is setup, not cadence, and is left out. Every right-hand side reads the old row.
    private static final NamedSql HEARTBEAT = NamedSql.of("""
            UPDATE tasks
               SET lease_expires_at = greatest(lease_expires_at, now() + :lease_ms * interval '1 millisecond'),
                   progress_interval_ms = CASE WHEN progress_count = 0 THEN NULL
                                               WHEN progress_interval_ms IS NULL
                                                   THEN extract(epoch FROM now() - last_heartbeat_at) * 1000
                                               ELSE 0.7 * progress_interval_ms
                                                    + 0.3 * extract(epoch FROM now() - last_heartbeat_at) * 1000 END,
                   progress_count = progress_count + 1,
                   last_heartbeat_at = now(),
                   progress = CASE WHEN :has_progress THEN jsonb_build_object(
                                  -- a message alone keeps the last checkpoint: the next attempt still resumes from it
                                  'checkpoint', coalesce(:progress::jsonb, progress->'checkpoint'),
                                  'message', :message::text, 'at', now(), 'lease_token', lease_token)
                              ELSE progress END
             WHERE id = :id AND owner_id = :owner AND lease_token = :token AND status = 'running'
            """);

    /**
     * running (owner, token) → running: a progress report. Moves the attempt's progress time and cadence,
     * keeps the lease at least {@code lease} ahead and, when {@code progressJson} or {@code message} is
     * given, saves the checkpoint the next attempt will see. False: the lease is lost.
     */
    public boolean heartbeat(String owner, long id, long token, Duration lease, String progressJson, String message) {
        Map<String, Object> v = new HashMap<>();
        v.put("lease_ms", lease.toMillis());
        v.put("has_progress", progressJson != null || message != null);
        v.put("progress", StorableText.json(progressJson));
        v.put("message", StorableText.text(truncate(message)));
        v.put("id", id);
        v.put("owner", owner);
        v.put("token", token);
        return exactlyOneOrNone(update(HEARTBEAT, v), id);
    }

    // ---------------------------------------------------------------- extend: running (mine) -> running, quiet for a while

    private static final NamedSql EXTEND = NamedSql.of("""
            WITH upd AS (
                UPDATE tasks t
                   SET extension_count = t.extension_count + 1,
                       quiet_until = greatest(t.quiet_until, now() + :by_ms * interval '1 millisecond'),
                       lease_expires_at = greatest(t.lease_expires_at, now() + :by_ms * interval '1 millisecond')
                 WHERE t.id = :id AND t.owner_id = :owner AND t.lease_token = :token AND t.status = 'running'
                   AND t.extension_count < :max_extensions
                RETURNING t.extension_count, t.quiet_until
            ), refused AS (
                SELECT t.extension_count FROM tasks t
                 WHERE t.id = :id AND t.owner_id = :owner AND t.lease_token = :token AND t.status = 'running'
                   AND NOT EXISTS (SELECT 1 FROM upd)
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT :id, 'lease_extended', :owner, :token,
                       jsonb_build_object('by_ms', :by_ms, 'reason', :reason::text, 'extension', u.extension_count,
                                          'max_extensions', :max_extensions, 'quiet_until', u.quiet_until)
                  FROM upd u
                UNION ALL
                SELECT :id, 'extension_refused', :owner, :token,
                       jsonb_build_object('by_ms', :by_ms, 'reason', :reason::text, 'extensions', r.extension_count,
                                          'max_extensions', :max_extensions)
                  FROM refused r
            )
            SELECT 'granted' AS answer FROM upd UNION ALL SELECT 'refused' FROM refused
            """);

    /** What {@link #extendLease} answered. */
    public enum Extension { GRANTED, REFUSED, LEASE_LOST }

    /**
     * running (owner, token) → running, not judged stuck and its lease not expiring before
     * {@code now() + by}, while fewer than {@code maxExtensions} were granted to this attempt
     * ({@code lease_extended}); beyond them REFUSED ({@code extension_refused}), the row unchanged.
     * LEASE_LOST: not this owner's running attempt any more.
     */
    public Extension extendLease(String owner, long id, long token, Duration by, String reason, int maxExtensions) {
        Map<String, Object> v = new HashMap<>();
        v.put("id", id);
        v.put("owner", owner);
        v.put("token", token);
        v.put("by_ms", by.toMillis());
        v.put("reason", reason);
        v.put("max_extensions", maxExtensions);
        return query(EXTEND, v, rs -> !rs.next() ? Extension.LEASE_LOST
                : rs.getString(1).equals("granted") ? Extension.GRANTED : Extension.REFUSED);
    }

    // ---------------------------------------------------------------- complete: running (mine) -> succeeded

    static final String COMPLETE_TEXT = """
            WITH done AS (
                SELECT * FROM unnest(:ids::bigint[], :tokens::bigint[], :results::text[]) AS d(id, token, result)
            ), upd AS (
                UPDATE tasks t
                   SET status = 'succeeded', result = d.result::jsonb, finished_at = now(), updated_at = now(),
                       lease_expires_at = NULL,
                       -- a success under the lease it presents writes no event: it reserves the id of its
                       -- 'succeeded' row, shown from this row by the task_events view (V13)
                       done_event_id = CASE WHEN t.compensating OR t.lease_token <> d.token THEN NULL
                                            ELSE nextval('task_event_log_id_seq') END
                  FROM done d
                 WHERE t.id = d.id AND t.lease_token = d.token AND t.owner_id = :owner AND t.status = 'running'
                -- the token the node presented, not the row's (the fence makes them equal): an audit of the
                -- events must see what was asked, or a write the fence should have refused but did not
                -- would look like one it accepted (so such a write is stored, never derived from the row);
                -- a compensation step's success is 'compensated' (V10_5's trigger), stored too
                RETURNING t.id, d.token AS lease_token, t.status, t.done_event_id
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token)
                SELECT u.id, u.status, :owner, u.lease_token FROM upd u WHERE u.done_event_id IS NULL
            ), missed AS (
                -- outcomes the update did not take (normally none), with the row as it is; only these are
                -- looked up again, by primary key: a join of every outcome with the finished rows would
                -- scan them all on the statistics of a fresh backlog. By (id, token): a batch may hold two
                -- outcomes of one task under different tokens (this node took over its own expired lease);
                -- the stale one is missed and refused even though the task id was written
                SELECT d.id, d.token, t.status, t.owner_id, t.lease_token
                  FROM done d LEFT JOIN tasks t ON t.id = d.id
                 WHERE (d.id, d.token) NOT IN (SELECT id, lease_token FROM upd)
            ), refused AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT m.id, 'completion_refused', :owner, m.token,
                       jsonb_build_object('outcome', 'succeeded', 'status', m.status,
                                          'current_owner', m.owner_id, 'current_token', m.lease_token)
                  FROM missed m
                 WHERE (m.status IN ('succeeded', 'compensated') AND m.owner_id = :owner AND m.lease_token = m.token) IS NOT TRUE
            )
            -- the missed ones already succeeded under this lease: a retry of a write whose commit we did
            -- not hear about (the connection broke): it is ours
            SELECT id, lease_token AS token, status FROM upd
            UNION ALL
            SELECT id, token, status FROM missed WHERE status IN ('succeeded', 'compensated') AND owner_id = :owner AND lease_token = token
            """;
    static final NamedSql COMPLETE = NamedSql.of(Mutant.seed(Mutant.COMPLETION_IGNORES_TOKEN, COMPLETE_TEXT,
            "t.lease_token = d.token AND ", ""));

    // A retried failure (the commit's reply was lost) finds the row no longer running under its token;
    // its own event under (owner, token) shows the first write committed: accepted again, no new event.
    // The row itself cannot tell: a retry_scheduled row is pending with its owner cleared.
    // the mutant's guard: 32-bit max_attempts + Integer.MAX_VALUE - attempts > 0, wrapping as Java int does
    private static final String WRAPPED_BUDGET =
            "((t.max_attempts::bigint + 2147483647 + 2147483648) % 4294967296 - 2147483648 - t.attempts + 2147483648"
            + " + 4294967296) % 4294967296 - 2147483648 > 0";

    private static final NamedSql FAIL = NamedSql.of(Mutant.seed(Mutant.BUDGET_INT_OVERFLOW, """
            WITH f AS (
                SELECT * FROM unnest(:ids::bigint[], :tokens::bigint[], :errors::text[], :permanent::boolean[],
                                     :delay_ms::bigint[], :notes::text[]) AS f(id, token, error, permanent, delay_ms, note)
            ), upd AS (
                UPDATE tasks t
                   SET status = CASE WHEN NOT f.permanent AND t.attempts < t.max_attempts THEN 'pending' ELSE 'failed' END,
                       run_at = CASE WHEN NOT f.permanent AND t.attempts < t.max_attempts
                                     THEN now() + f.delay_ms * interval '1 millisecond' ELSE t.run_at END,
                       owner_id = CASE WHEN NOT f.permanent AND t.attempts < t.max_attempts THEN NULL ELSE t.owner_id END,
                       finished_at = CASE WHEN NOT f.permanent AND t.attempts < t.max_attempts THEN NULL ELSE now() END,
                       last_error = f.error, lease_expires_at = NULL, updated_at = now()
                  FROM f
                 WHERE t.id = f.id AND t.lease_token = f.token AND t.owner_id = :owner AND t.status = 'running'
                -- f.token: the token presented (the fence makes it the row's), for the events as in COMPLETE.
                -- V10_5's trigger turns a compensable kind's end into 'compensating' (attempts reset to 0),
                -- and a compensation step's retry into 'compensating', its exhaustion into 'quarantined'
                RETURNING t.id, f.token AS lease_token, t.status, t.attempts, t.max_attempts, t.run_at, f.error, f.permanent, f.note,
                          t.compensating, t.last_error
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT u.id, CASE WHEN u.status = 'pending' THEN 'retry_scheduled'
                                  WHEN u.status = 'compensating' AND u.attempts > 0 THEN 'compensation_failed'
                                  WHEN u.status = 'quarantined' THEN 'quarantined' ELSE 'failed' END, :owner, u.lease_token,
                       jsonb_build_object('error', u.error, 'attempt', u.attempts, 'max_attempts', u.max_attempts,
                                          'permanent', u.permanent, 'status', u.status,
                                          'next_run_at', CASE WHEN u.status IN ('pending', 'compensating') THEN u.run_at END)
                       || CASE WHEN u.status = 'quarantined' AND u.compensating
                               THEN jsonb_build_object('by', 'compensation', 'original_error', u.last_error)
                               ELSE '{}'::jsonb END
                       || CASE WHEN u.note IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('note', u.note) END
                  FROM upd u
            ), missed AS (
                SELECT f.id, f.token, t.status, t.owner_id, t.lease_token,
                       (SELECT e.event FROM task_event_log e
                         WHERE e.task_id = f.id AND e.owner_id = :owner AND e.lease_token = f.token
                           AND (e.event IN ('failed', 'retry_scheduled', 'compensation_failed')
                                OR (e.event = 'quarantined' AND e.detail->>'by' = 'compensation'))
                         ORDER BY e.id DESC LIMIT 1) AS written,
                       (SELECT e.detail->>'status' FROM task_event_log e
                         WHERE e.task_id = f.id AND e.owner_id = :owner AND e.lease_token = f.token
                           AND (e.event IN ('failed', 'retry_scheduled', 'compensation_failed')
                                OR (e.event = 'quarantined' AND e.detail->>'by' = 'compensation'))
                         ORDER BY e.id DESC LIMIT 1) AS written_status
                  FROM f LEFT JOIN tasks t ON t.id = f.id
                 WHERE (f.id, f.token) NOT IN (SELECT id, lease_token FROM upd)
            ), refused AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT m.id, 'completion_refused', :owner, m.token,
                       jsonb_build_object('outcome', 'failed', 'status', m.status,
                                          'current_owner', m.owner_id, 'current_token', m.lease_token)
                  FROM missed m
                 WHERE m.written IS NULL
            )
            SELECT id, lease_token AS token, status FROM upd
            UNION ALL
            SELECT id, token, coalesce(written_status, CASE WHEN written = 'failed' THEN 'failed' ELSE 'pending' END)
              FROM missed WHERE written IS NOT NULL
            """, "t.attempts < t.max_attempts", WRAPPED_BUDGET));

    /**
     * running (owner, token) → succeeded for each success, → pending (retry after its delay) or failed
     * for each failure; two statements at most, one commit each. Outcomes whose lease is gone change
     * nothing and are recorded as completion_refused; an outcome already written under its token (a
     * retry after a lost commit reply) is accepted again without a second event. Returns the outcomes
     * accepted, each with its task's lease token and the status its write gave the row. Handler text
     * is made storable first ({@link StorableText}).
     */
    public List<Accepted> writeOutcomes(String owner, List<? extends Outcome> outcomes) {
        List<Outcome.Success> ok = new ArrayList<>();
        List<Outcome.Failure> failed = new ArrayList<>();
        for (Outcome o : outcomes) {
            if (o instanceof Outcome.Success s) ok.add(s);
            else failed.add((Outcome.Failure) o);
        }
        List<Accepted> accepted = new ArrayList<>(outcomes.size());
        Rows<Void> read = rs -> {
            int id = rs.findColumn("id"), token = rs.findColumn("token"), status = rs.findColumn("status");
            while (rs.next()) accepted.add(new Accepted(rs.getLong(id), rs.getLong(token), TaskStatus.of(rs.getString(status))));
            return null;
        };
        if (!ok.isEmpty()) {
            Long[] ids = new Long[ok.size()];
            Long[] tokens = new Long[ok.size()];
            String[] results = new String[ok.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = ok.get(i).id();
                tokens[i] = ok.get(i).leaseToken();
                results[i] = StorableText.json(ok.get(i).resultJson());
            }
            query(COMPLETE, Map.of("ids", ids, "tokens", tokens, "results", results, "owner", owner), read);
            if (Mutant.ACTIVE == Mutant.SUBSTITUTE_FINISHED) {
                substitute(accepted.stream().map(Accepted::id).collect(java.util.stream.Collectors.toSet()));
            }
        }
        if (!failed.isEmpty()) {
            Long[] ids = new Long[failed.size()];
            Long[] tokens = new Long[failed.size()];
            String[] errors = new String[failed.size()];
            Boolean[] permanent = new Boolean[failed.size()];
            Long[] delay = new Long[failed.size()];
            String[] notes = new String[failed.size()];
            for (int i = 0; i < ids.length; i++) {
                Outcome.Failure f = failed.get(i);
                ids[i] = f.id();
                tokens[i] = f.leaseToken();
                errors[i] = StorableText.text(truncate(f.error()));
                permanent[i] = f.permanent();
                delay[i] = f.retryDelay().toMillis();
                notes[i] = StorableText.text(truncate(f.note()));
            }
            query(FAIL, Map.of("ids", ids, "tokens", tokens, "errors", errors, "permanent", permanent,
                    "delay_ms", delay, "notes", notes, "owner", owner), read);
        }
        if (accepted.size() > outcomes.size()) {
            throw new IllegalStateException("completion accepted " + accepted.size() + " rows for " + outcomes.size() + " outcomes");
        }
        return accepted;
    }

    /** {@link #writeOutcomes}, as the status of each accepted task by id (tests and tools). */
    public Map<Long, TaskStatus> completeIfOwned(String owner, List<? extends Outcome> outcomes) {
        Map<Long, TaskStatus> out = new HashMap<>();
        for (Accepted a : writeOutcomes(owner, outcomes)) out.put(a.id(), a.status());
        return out;
    }

    /** An outcome the database accepted: its task, the lease token it was written under, the row's status. */
    public record Accepted(long id, long leaseToken, TaskStatus status) {}

    private static final NamedSql SUBSTITUTE = NamedSql.of("""
            WITH gone AS (
                DELETE FROM tasks t WHERE t.id = ANY(:ids::bigint[]) AND t.id % 10 = 0 RETURNING t.*
            ), events AS (
                DELETE FROM task_event_log e USING gone g WHERE e.task_id = g.id
            ), look_alike AS (
                INSERT INTO tasks (queue, kind, payload, priority, max_attempts, run_at, status, attempts, owner_id,
                                   lease_token, result, started_at, finished_at)
                SELECT g.queue, g.kind, g.payload, g.priority, g.max_attempts, g.run_at, 'succeeded', 1, g.owner_id,
                       1, g.result, g.started_at, g.finished_at FROM gone g
                RETURNING id, owner_id
            )
            INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
            SELECT l.id, v.event, l.owner_id, 1, v.detail::jsonb
              FROM look_alike l, (VALUES (1, 'claimed', '{"attempt": 1}'), (2, 'succeeded', NULL)) AS v(n, event, detail)
             ORDER BY l.id, v.n
            """);

    /** Mutant {@link Mutant#SUBSTITUTE_FINISHED}: a finished task replaced by a look-alike with a clean history. */
    private void substitute(Set<Long> succeeded) {
        update(SUBSTITUTE, Map.of("ids", succeeded.toArray(Long[]::new)));
    }

    // ---------------------------------------------------------------- release: running (mine) -> pending, attempt not charged

    private static final NamedSql RELEASE = NamedSql.of("""
            WITH r AS (
                SELECT * FROM unnest(:ids::bigint[], :tokens::bigint[]) AS r(id, token)
            ), upd AS (
                UPDATE tasks t
                   SET status = 'pending', owner_id = NULL, lease_expires_at = NULL, run_at = now(),
                       attempts = greatest(t.attempts - 1, 0), updated_at = now()
                  FROM r
                 WHERE t.id = r.id AND t.lease_token = r.token AND t.owner_id = :owner AND t.status = 'running'
                RETURNING t.id, r.token
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT u.id, 'released', :owner, u.token, jsonb_build_object('reason', :reason::text) FROM upd u
            )
            SELECT id FROM upd
            """);

    /**
     * running (owner, token) → pending, due now, the attempt given back: a draining node hands back what
     * it could not finish. Returns the ids released (a lease already lost is left as it is).
     */
    public Set<Long> releaseHeld(String owner, List<HeldLease> held, String reason) {
        if (held.isEmpty()) return Set.of();
        Long[] ids = held.stream().map(HeldLease::id).toArray(Long[]::new);
        Long[] tokens = held.stream().map(HeldLease::leaseToken).toArray(Long[]::new);
        return query(RELEASE, Map.of("ids", ids, "tokens", tokens, "owner", owner, "reason", reason), rs -> {
            Set<Long> out = new HashSet<>();
            while (rs.next()) out.add(rs.getLong(1));
            return out;
        });
    }

    // ---------------------------------------------------------------- hand-off: what the previous attempt left (read only)

    // The attempts of a task are its claims (lease tokens grow with each); a reclaim after a lost claim
    // response continues the same attempt and is skipped. The previous attempt ended with the first of
    // the ending events written under its tokens; none when the next claim took its expired lease over
    // (that claim says so in took_over_from). Reads only task_events by (task_id, id): run when a handler
    // asks, never on the claim path.
    private static final NamedSql PREVIOUS_ATTEMPT = NamedSql.of("""
            WITH claims AS (
                SELECT e.id, e.owner_id, e.lease_token, e.at, e.detail
                  FROM task_events e
                 WHERE e.task_id = :id AND e.event = 'claimed' AND e.lease_token <= :token
                   AND e.detail->>'reason' IS DISTINCT FROM 'reclaimed after a lost claim response'
            ), cur AS (
                SELECT c.lease_token, c.at, c.owner_id, c.detail FROM claims c ORDER BY c.lease_token DESC, c.id DESC LIMIT 1
            ), prev AS (
                SELECT c.owner_id, c.lease_token, c.at, (c.detail->>'attempt')::int AS attempt
                  FROM claims c, cur WHERE c.lease_token < cur.lease_token
                 ORDER BY c.lease_token DESC, c.id DESC LIMIT 1
            ), ending AS (
                SELECT e.event, e.at, e.detail::text AS detail
                  FROM task_events e, prev, cur
                 WHERE e.task_id = :id AND e.lease_token >= prev.lease_token AND e.lease_token < cur.lease_token
                   AND e.event IN ('retry_scheduled', 'failed', 'succeeded', 'stuck', 'requeued', 'quarantined',
                                   'recovered_on_startup', 'released', 'cancelled')
                 ORDER BY e.id LIMIT 1
            )
            SELECT prev.owner_id, prev.lease_token, prev.attempt, prev.at AS started_at,
                   ending.event, ending.detail, ending.at AS ended_at,
                   CASE WHEN cur.detail->>'took_over_from' IS NOT NULL THEN cur.at END AS taken_at,
                   CASE WHEN cur.detail->>'took_over_from' IS NOT NULL THEN cur.owner_id END AS taken_by
              FROM prev CROSS JOIN cur LEFT JOIN ending ON true
            """);

    /**
     * How the attempt before the one holding lease {@code token} of task {@code id} went, from the audit
     * trail; empty for a first attempt (or when its events were pruned). Changes nothing.
     */
    public Optional<AttemptRecord> previousAttempt(long id, long token) {
        return query(PREVIOUS_ATTEMPT, Map.of("id", id, "token", token), rs -> !rs.next() ? Optional.empty()
                : Optional.of(new AttemptRecord(rs.getString("owner_id"), rs.getLong("lease_token"), rs.getInt("attempt"),
                        rs.getObject("started_at", OffsetDateTime.class), rs.getString("event"), rs.getString("detail"),
                        rs.getObject("ended_at", OffsetDateTime.class), rs.getObject("taken_at", OffsetDateTime.class),
                        rs.getString("taken_by"))));
    }

    // ---------------------------------------------------------------- reaper: stale running -> pending | quarantined

    // Stale: lease expired; or the owner is a registered node that stopped or has not heartbeated for
    // :node_timeout_ms; or the owner is no registered node (rows of versions before dispatcher_nodes, manual
    // edits) and the row shows no activity for :stale_ms (last_heartbeat_at, else updated_at). A live
    // node's own tasks are never stale here however silent their handlers: since V10 last_heartbeat_at is
    // the handler's progress, and a silent handler is the owner's to judge (the renewal's stuck rule), which
    // can interrupt it. The cause is machine-readable for the hand-off (TaskContext.previousAttempt).
    /**
     * The reaper's "stale" over a running row {@code t} joined to its owner's node row {@code n} (binds
     * {@code :stale_ms} and {@code :node_timeout_ms}): written once, for the sweep and the lease figures.
     */
    static final String STALE_PREDICATE = """
            (t.lease_expires_at < now()
             OR (n.node_id IS NULL
                 AND coalesce(t.last_heartbeat_at, t.updated_at) < now() - :stale_ms * interval '1 millisecond')
             OR n.stopped_at IS NOT NULL
             OR n.last_seen_at < now() - :node_timeout_ms * interval '1 millisecond')""";

    /** SQL text of {@code timestamptz} in UTC with milliseconds, {@code 2026-12-07 04:50:01.123Z}, whatever the session's TimeZone. */
    static String utc(String expr) {
        return "to_char((" + expr + ") AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS\"Z\"')";
    }

    private static final String STALE_ROWS = """
                SELECT t.id, t.owner_id, t.lease_token, t.requeue_count < :max_requeue AS requeue,
                       -- times in UTC whatever the session's TimeZone (the reason goes into last_error and the
                       -- event: the reaping node's JVM time zone must not decide how the audit trail reads)
                       CASE WHEN n.node_id IS NOT NULL AND n.stopped_at IS NOT NULL
                                THEN 'owner node ' || t.owner_id || ' stopped at ' || """ + utc("n.stopped_at") + """
                            WHEN n.node_id IS NOT NULL AND n.last_seen_at < now() - :node_timeout_ms * interval '1 millisecond'
                                THEN 'owner node ' || t.owner_id || ' not seen since ' || """ + utc("n.last_seen_at") + """
                            WHEN t.lease_expires_at < now()
                                THEN 'lease expired at ' || """ + utc("t.lease_expires_at") + """
                            ELSE 'no heartbeat since ' || """ + utc("coalesce(t.last_heartbeat_at, t.updated_at)") + """
             END AS reason,
                       CASE WHEN n.node_id IS NOT NULL AND n.stopped_at IS NOT NULL THEN 'node_stopped'
                            WHEN n.node_id IS NOT NULL AND n.last_seen_at < now() - :node_timeout_ms * interval '1 millisecond'
                                THEN 'node_dead'
                            WHEN t.lease_expires_at < now() THEN 'lease_expired'
                            ELSE 'silent' END AS cause
                  FROM tasks t LEFT JOIN dispatcher_nodes n ON n.node_id = t.owner_id
                 WHERE t.status = 'running' AND """ + STALE_PREDICATE + """
                   -- a node's own reaper leaves its own rows alone until its renewer has heartbeated within the
                   -- freshness bound: after an outage longer than the lease they look stale, yet its workers run
                   -- them and its renewer renews them on reconnect (issue 11 item 5); '' = no reaping node
                   AND (t.owner_id IS DISTINCT FROM :reaper_node::text
                        OR n.last_seen_at >= now() - :own_fresh_ms * interval '1 millisecond')
                 ORDER BY t.id
                 LIMIT :batch
            """;

    private static final NamedSql STALE_PLAN = NamedSql.of(STALE_ROWS);

    private static final NamedSql REQUEUE_STALE = NamedSql.of("""
            WITH lock AS (
                SELECT pg_try_advisory_xact_lock(:lock_key) AS held
            ), stale AS (
            """ + STALE_ROWS + """
                   FOR UPDATE OF t SKIP LOCKED
            ), moved AS (
                UPDATE tasks t
                   SET status = CASE WHEN s.requeue THEN 'pending' ELSE 'quarantined' END,
                       requeue_count = t.requeue_count + CASE WHEN s.requeue THEN 1 ELSE 0 END,
                       owner_id = CASE WHEN s.requeue THEN NULL ELSE t.owner_id END,
                       lease_expires_at = NULL,
                       run_at = CASE WHEN s.requeue THEN now() ELSE t.run_at END,
                       finished_at = CASE WHEN s.requeue THEN NULL ELSE now() END,
                       last_error = CASE WHEN s.requeue THEN t.last_error
                                         ELSE 'quarantined: requeue budget ' || :max_requeue || ' exhausted; ' || s.reason END,
                       updated_at = now()
                  FROM stale s, lock
                 WHERE t.id = s.id AND lock.held
                RETURNING t.id, s.owner_id, s.lease_token, s.requeue, s.reason, s.cause, t.requeue_count
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT m.id, CASE WHEN m.requeue THEN 'requeued' ELSE 'quarantined' END, m.owner_id, m.lease_token,
                       jsonb_build_object('reason', m.reason, 'cause', m.cause, 'requeue_count', m.requeue_count,
                                          'by', 'reaper')
                  FROM moved m
            )
            SELECT (SELECT held FROM lock) AS locked, m.id, m.owner_id, m.lease_token,
                   CASE WHEN m.requeue THEN 'requeue' ELSE 'quarantine' END AS action, m.reason
              FROM (SELECT 1) one LEFT JOIN moved m ON true
            """);

    /** What {@link #requeueStale} would do now to at most {@code batch} rows; changes nothing. */
    public List<StaleTask> planStale(Duration stale, Duration nodeTimeout, int maxRequeue, int batch) {
        return query(STALE_PLAN, staleParams(stale, nodeTimeout, maxRequeue, batch), rs -> {
            List<StaleTask> out = new ArrayList<>();
            while (rs.next()) {
                out.add(new StaleTask(rs.getLong("id"), rs.getString("owner_id"), rs.getLong("lease_token"),
                        rs.getBoolean("requeue") ? "requeue" : "quarantine", rs.getString("reason")));
            }
            return out;
        });
    }

    /**
     * Stale running → pending (owner cleared, requeue_count + 1) while requeue_count &lt; maxRequeue,
     * else → quarantined with the reason in last_error; at most {@code batch} rows, one transaction.
     * Only one sweep runs at a time cluster-wide (transaction-scoped advisory lock): empty when another
     * holds it.
     */
    public Optional<List<StaleTask>> requeueStale(Duration stale, Duration nodeTimeout, int maxRequeue, int batch) {
        return requeueStale(stale, nodeTimeout, maxRequeue, batch, "", Duration.ZERO);
    }

    /**
     * As above, swept by node {@code reaperNode}: its own rows only while its node row was seen within
     * {@code ownFresh} (its renewal, which renews those rows in the same statement, is current).
     */
    public Optional<List<StaleTask>> requeueStale(Duration stale, Duration nodeTimeout, int maxRequeue, int batch,
                                                  String reaperNode, Duration ownFresh) {
        Map<String, Object> v = staleParams(stale, nodeTimeout, maxRequeue, batch);
        v.put("reaper_node", reaperNode);
        v.put("own_fresh_ms", ownFresh.toMillis());
        v.put("lock_key", REAPER_LOCK);
        return query(REQUEUE_STALE, v, rs -> {
            List<StaleTask> out = new ArrayList<>();
            boolean locked = false;
            while (rs.next()) {
                locked = rs.getBoolean("locked");
                if (rs.getObject("id") != null) {
                    out.add(new StaleTask(rs.getLong("id"), rs.getString("owner_id"), rs.getLong("lease_token"),
                            rs.getString("action"), rs.getString("reason")));
                }
            }
            return locked ? Optional.of(out) : Optional.empty();
        });
    }

    private static Map<String, Object> staleParams(Duration stale, Duration nodeTimeout, int maxRequeue, int batch) {
        Map<String, Object> v = new HashMap<>();
        v.put("stale_ms", stale.toMillis());
        v.put("node_timeout_ms", nodeTimeout.toMillis());
        v.put("max_requeue", maxRequeue);
        v.put("batch", batch);
        v.put("reaper_node", ""); // the plan and the reap command sweep for no node of their own
        v.put("own_fresh_ms", 0L);
        return v;
    }

    // ---------------------------------------------------------------- recover: running (my previous life) -> pending | quarantined

    private static final NamedSql RECOVER = NamedSql.of("""
            WITH mine AS (
                SELECT t.id, t.lease_token, t.requeue_count < :max_requeue AS requeue
                  FROM tasks t
                 WHERE t.status = 'running' AND t.owner_id = :owner
                 ORDER BY t.id
                 LIMIT :batch
                   FOR UPDATE OF t SKIP LOCKED
            ), moved AS (
                UPDATE tasks t
                   SET status = CASE WHEN m.requeue THEN 'pending' ELSE 'quarantined' END,
                       requeue_count = t.requeue_count + CASE WHEN m.requeue THEN 1 ELSE 0 END,
                       owner_id = CASE WHEN m.requeue THEN NULL ELSE t.owner_id END,
                       lease_expires_at = NULL,
                       run_at = CASE WHEN m.requeue THEN now() ELSE t.run_at END,
                       finished_at = CASE WHEN m.requeue THEN NULL ELSE now() END,
                       last_error = CASE WHEN m.requeue THEN t.last_error
                                         ELSE 'quarantined: requeue budget ' || :max_requeue
                                              || ' exhausted; left running by a previous incarnation of ' || :owner END,
                       updated_at = now()
                  FROM mine m
                 WHERE t.id = m.id
                RETURNING t.id, m.lease_token, m.requeue, t.requeue_count
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT m.id, CASE WHEN m.requeue THEN 'recovered_on_startup' ELSE 'quarantined' END, :owner, m.lease_token,
                       jsonb_build_object('reason', 'left running by a previous incarnation', 'requeue_count', m.requeue_count,
                                          'by', 'startup_recovery')
                  FROM moved m
            )
            SELECT id, requeue FROM moved
            """);

    /**
     * running, owned by {@code owner} (its previous incarnation: called before this one claims) →
     * pending within the requeue budget, else quarantined; at most {@code batch} rows. Returns
     * (recovered, quarantined) counts.
     */
    public int[] recoverOwnedBy(String owner, int maxRequeue, int batch) {
        return query(RECOVER, Map.of("owner", owner, "max_requeue", maxRequeue, "batch", batch), rs -> {
            int[] n = new int[2];
            while (rs.next()) n[rs.getBoolean("requeue") ? 0 : 1]++;
            return n;
        });
    }

    // ---------------------------------------------------------------- operator actions

    private static final NamedSql CANCEL = NamedSql.of("""
            WITH old AS (
                SELECT t.id, t.owner_id FROM tasks t WHERE t.id = :id FOR UPDATE
            ), upd AS (
                UPDATE tasks t
                   SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_expires_at = NULL,
                       run_at = CASE WHEN isfinite(t.run_at) THEN t.run_at ELSE now() END, -- V9's check: a legacy infinite run_at
                       last_error = coalesce(:reason::text, t.last_error)
                  FROM old o
                 WHERE t.id = o.id AND t.status IN ('waiting', 'pending', 'running') AND NOT t.compensating
                -- a compensable kind that had started goes on to 'compensating' (V10_5's trigger clears the owner)
                RETURNING t.id, o.owner_id, t.lease_token, t.status
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT u.id, 'cancelled', u.owner_id, u.lease_token,
                       jsonb_build_object('reason', :reason::text, 'by', 'operator')
                       || CASE WHEN u.status = 'compensating' THEN jsonb_build_object('status', u.status) ELSE '{}'::jsonb END
                  FROM upd u
            )
            SELECT id FROM upd
            """);

    /**
     * waiting | pending | running → cancelled. A running task's handler learns it at its next renewal (its
     * lease is no longer renewed) and its completion is refused; a task waiting for this one is cancelled
     * too (V12_2's trigger). False: no such task, or already terminal.
     */
    public boolean cancel(long id, String reason) {
        return exactlyOneOrNone(query(CANCEL, mapOf("id", id, "reason", reason), TaskStore::countRows), id);
    }

    private static final NamedSql RETRY = NamedSql.of("""
            WITH upd AS (
                UPDATE tasks t
                   SET status = 'pending', attempts = 0, requeue_count = 0, run_at = now(), owner_id = NULL,
                       lease_expires_at = NULL, finished_at = NULL, started_at = NULL, result = NULL,
                       compensating = false, attempts_before_compensation = NULL, compensation_error = NULL,
                       updated_at = now()
                 WHERE t.id = :id AND t.status IN ('succeeded', 'failed', 'cancelled', 'quarantined', 'compensated')
                RETURNING t.id, t.lease_token
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, lease_token, detail)
                SELECT u.id, 'retried_by_operator', u.lease_token,
                       jsonb_strip_nulls(jsonb_build_object('by', 'operator', 'reason', :reason::text)) FROM upd u
            )
            SELECT id FROM upd
            """);

    /**
     * succeeded | failed | cancelled | quarantined → pending with a fresh attempt series (attempts and
     * requeue count reset; last_error kept for the record). False: no such task, or not terminal.
     */
    public boolean retry(long id) {
        return retry(id, null);
    }

    /** As {@link #retry(long)}, with the operator's reason kept in the event's detail (null: none given). */
    public boolean retry(long id, String reason) {
        return exactlyOneOrNone(query(RETRY, mapOf("id", id, "reason", reason), TaskStore::countRows), id);
    }

    private static final NamedSql QUARANTINE = NamedSql.of("""
            WITH upd AS (
                UPDATE tasks t
                   SET status = 'quarantined', finished_at = now(), updated_at = now(), lease_expires_at = NULL,
                       run_at = CASE WHEN isfinite(t.run_at) THEN t.run_at ELSE now() END, -- V9's check: a legacy infinite run_at
                       last_error = 'quarantined by operator: ' || :reason::text
                 WHERE t.id = :id AND t.status IN ('waiting', 'pending', 'running', 'failed', 'compensating')
                RETURNING t.id, t.owner_id, t.lease_token
            ), ev AS (
                INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                SELECT u.id, 'quarantined', u.owner_id, u.lease_token, jsonb_build_object('reason', :reason::text, 'by', 'operator')
                  FROM upd u
            )
            SELECT id FROM upd
            """);

    /** waiting | pending | running | failed → quarantined, set aside for inspection. False: no such task or not allowed. */
    public boolean quarantine(long id, String reason) {
        return exactlyOneOrNone(query(QUARANTINE, Map.of("id", id, "reason", reason), TaskStore::countRows), id);
    }

    // ---------------------------------------------------------------- bulk operator actions: many tasks, one statement

    // The tasks a TaskFilter selects. updated_at: the last transition (renewals do not touch it).
    private static final String MATCHING = """
                  FROM tasks t
                 WHERE t.status = ANY(:statuses::text[])
                   AND (:kind::text IS NULL OR t.kind = :kind)
                   AND (:queue::text IS NULL OR t.queue = :queue)
                   AND (:older_ms::bigint IS NULL OR t.updated_at < now() - :older_ms * interval '1 millisecond')
                   -- a retry back to pending would break a unique key another task holds now: left out
                   AND (NOT :to_pending OR t.unique_key IS NULL OR NOT EXISTS (
                            SELECT 1 FROM tasks o WHERE o.unique_key = t.unique_key AND o.id <> t.id
                                                    AND o.status = ANY(o.unique_states)))
                 ORDER BY t.id
                 LIMIT :limit
            """;

    private static final NamedSql PLAN_MATCHING = NamedSql.of(
            "SELECT t.id, t.queue, t.kind, t.status AS prev_status\n" + MATCHING);

    // Locked in id order, waiting for rows a claim or completion holds for a moment (SKIP LOCKED would
    // leave out exactly the tasks changing right now); the status is checked again on the row as it is
    // once the lock is held. Each action's UPDATE and its events follow in the same statement.
    private static final String PICK = """
            WITH picked AS (
                SELECT t.id, t.status AS prev_status, t.owner_id AS prev_owner, t.lease_token AS prev_token
            """ + MATCHING + """
                   FOR UPDATE OF t
            )""";

    private static final Map<BulkAction, NamedSql> APPLY_MATCHING = Map.of(
            BulkAction.RETRY, NamedSql.of(PICK + """
                    , upd AS (
                        UPDATE tasks t
                           SET status = 'pending', attempts = 0, requeue_count = 0, run_at = now(), owner_id = NULL,
                               lease_expires_at = NULL, finished_at = NULL, started_at = NULL, result = NULL,
                               updated_at = now()
                          FROM picked p
                         WHERE t.id = p.id
                        RETURNING t.id, t.queue, t.kind, p.prev_status, p.prev_owner, t.lease_token
                    ), ev AS (
                        INSERT INTO task_event_log (task_id, event, lease_token, detail)
                        SELECT u.id, 'retried_by_operator', u.lease_token, jsonb_build_object('by', 'operator',
                               'actor', :actor::text, 'reason', :reason::text, 'from', u.prev_status, 'bulk', true)
                          FROM upd u
                    )
                    SELECT id, queue, kind, prev_status FROM upd ORDER BY id
                    """),
            BulkAction.CANCEL, NamedSql.of(PICK + """
                    , upd AS (
                        UPDATE tasks t
                           SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_expires_at = NULL,
                               run_at = CASE WHEN isfinite(t.run_at) THEN t.run_at ELSE now() END, -- V9's check
                               last_error = coalesce(:reason::text, t.last_error)
                          FROM picked p
                         -- as the single cancel: a compensable kind that had started goes on to compensating
                         -- (V10_5's trigger); one compensating already is left alone
                         WHERE t.id = p.id AND NOT t.compensating
                        RETURNING t.id, t.queue, t.kind, p.prev_status, p.prev_owner, t.lease_token
                    ), ev AS (
                        INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                        SELECT u.id, 'cancelled', u.prev_owner, u.lease_token, jsonb_build_object('by', 'operator',
                               'actor', :actor::text, 'reason', :reason::text, 'from', u.prev_status, 'bulk', true)
                          FROM upd u
                    )
                    SELECT id, queue, kind, prev_status FROM upd ORDER BY id
                    """),
            BulkAction.QUARANTINE, NamedSql.of(PICK + """
                    , upd AS (
                        UPDATE tasks t
                           SET status = 'quarantined', finished_at = now(), updated_at = now(), lease_expires_at = NULL,
                               run_at = CASE WHEN isfinite(t.run_at) THEN t.run_at ELSE now() END, -- V9's check
                               last_error = 'quarantined by operator: ' || coalesce(:reason::text, 'no reason given')
                          FROM picked p
                         WHERE t.id = p.id
                        RETURNING t.id, t.queue, t.kind, p.prev_status, p.prev_owner, t.lease_token
                    ), ev AS (
                        INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
                        SELECT u.id, 'quarantined', u.prev_owner, u.lease_token, jsonb_build_object('by', 'operator',
                               'actor', :actor::text, 'reason', :reason::text, 'from', u.prev_status, 'bulk', true)
                          FROM upd u
                    )
                    SELECT id, queue, kind, prev_status FROM upd ORDER BY id
                    """));

    /** A task a bulk action took (or, in a dry run, would take), with the status it had. */
    public record MatchedTask(long id, String queue, String kind, TaskStatus from) {}

    /** The tasks {@code filter} selects now, as {@link #applyMatching} with {@code action} would take them; changes nothing. */
    public List<MatchedTask> planMatching(BulkAction action, TaskFilter filter) {
        return query(PLAN_MATCHING, filterParams(action, filter), TaskStore::matched);
    }

    /**
     * The tasks {@code filter} selects → the action's target status, in one statement with one event
     * per task ({@code detail}: {@code reason}, {@code actor}, the status it came {@code from},
     * {@code bulk: true}). A task whose status changed out of the filter while it was being locked is
     * left out. Returns the tasks changed, lowest id first.
     */
    public List<MatchedTask> applyMatching(BulkAction action, TaskFilter filter, String reason, String actor) {
        for (TaskStatus s : filter.statuses()) {
            if (!action.allowed().contains(s)) {
                throw new IllegalArgumentException(action.word() + " does not apply to " + s.sql() + " tasks");
            }
        }
        Map<String, Object> v = filterParams(action, filter);
        v.put("reason", reason);
        v.put("actor", actor);
        List<MatchedTask> out = query(APPLY_MATCHING.get(action), v, TaskStore::matched);
        if (out.size() > filter.limit()) {
            throw new IllegalStateException(action.word() + ": statement changed " + out.size() + " rows, limit " + filter.limit());
        }
        return out;
    }

    private static Map<String, Object> filterParams(BulkAction action, TaskFilter f) {
        Map<String, Object> v = new HashMap<>();
        v.put("to_pending", action == BulkAction.RETRY);
        v.put("statuses", f.statuses().stream().map(TaskStatus::sql).toArray(String[]::new));
        v.put("kind", f.kind());
        v.put("queue", f.queue());
        v.put("older_ms", f.olderThan() == null ? null : f.olderThan().toMillis());
        v.put("limit", f.limit());
        return v;
    }

    private static List<MatchedTask> matched(ResultSet rs) throws SQLException {
        List<MatchedTask> out = new ArrayList<>();
        while (rs.next()) {
            out.add(new MatchedTask(rs.getLong("id"), rs.getString("queue"), rs.getString("kind"),
                    TaskStatus.of(rs.getString("prev_status"))));
        }
        return out;
    }

    // ---------------------------------------------------------------- prune: finished -> (deleted)

    // the statement lives in the database (V9): it runs with its owner's rights, so the runtime role
    // needs no DELETE on task_event_log, whose rows it otherwise only inserts
    private static final NamedSql PRUNE = NamedSql.of("""
            SELECT pgdispatch_prune_finished(:retention_ms * interval '1 millisecond', :batch)
            """);

    /**
     * succeeded | failed | cancelled finished more than {@code retention} ago → deleted with their
     * events, at most {@code batch} tasks. Quarantined rows are kept until an operator acts.
     */
    public int pruneFinished(Duration retention, int batch) {
        return query(PRUNE, Map.of("retention_ms", retention.toMillis(), "batch", batch), rs -> {
            rs.next();
            return rs.getInt(1);
        });
    }

    // ---------------------------------------------------------------- plumbing

    /** Length-bounded error text for last_error and events. */
    public static String truncate(String error) {
        if (error == null) return null;
        return error.length() <= MAX_ERROR_CHARS ? error : error.substring(0, MAX_ERROR_CHARS - 1) + "…";
    }

    private static boolean exactlyOneOrNone(int rows, long id) {
        if (rows > 1) throw new IllegalStateException("task " + id + ": statement changed " + rows + " rows");
        return rows == 1;
    }

    private static int countRows(ResultSet rs) throws SQLException {
        int n = 0;
        while (rs.next()) n++;
        return n;
    }

    private static Map<String, Object> mapOf(String k1, Object v1, String k2, Object v2) {
        Map<String, Object> m = new HashMap<>();
        m.put(k1, v1);
        m.put(k2, v2);
        return m;
    }

    @FunctionalInterface
    interface Rows<T> {
        T read(ResultSet rs) throws SQLException;
    }

    private <T> T query(NamedSql sql, Map<String, ?> values, Rows<T> reader) {
        try (Connection c = ds.getConnection(); PreparedStatement ps = sql.prepare(c, values);
             ResultSet rs = ps.executeQuery()) {
            return reader.read(rs);
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }

    private int update(NamedSql sql, Map<String, ?> values) {
        try (Connection c = ds.getConnection(); PreparedStatement ps = sql.prepare(c, values)) {
            return ps.executeUpdate();
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }
}

package pgdispatch.testing;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Collectors;
import pgdispatch.store.TaskStatus;

/**
 * Task rows in a given starting state, inserted with plain SQL through a {@link TestDatabase}, one entry
 * per state. Defaults are consistent with the state and the check constraints (a running row has an
 * owner, a token and an attempt charged; a terminal row has finished_at); every time is relative to the
 * database's {@code now()}, never the JVM clock. Each entry returns the new row's id.
 */
public final class TaskRows {
    /** Queue and kind of every row unless a test says otherwise; a claim for {@link #KIND} in {@link #QUEUE} finds them. */
    public static final String QUEUE = "default";
    public static final String KIND = "work";
    /** The lease a fresh {@link #running} row holds. */
    public static final Duration LEASE = Duration.ofMinutes(10);
    /** The owner a terminal row keeps (completion, failure, cancel and quarantine leave owner_id as it was). */
    public static final String FORMER_OWNER = "node-former";

    private TaskRows() {}

    /** pending, due now, in {@link #QUEUE}, of kind {@link #KIND}, never attempted. */
    public static long pending(TestDatabase db) {
        return pending(db, QUEUE, KIND);
    }

    public static long pending(TestDatabase db, String queue, String kind) {
        return insert(db, cols("queue", lit(queue), "kind", lit(kind), "status", "'pending'",
                "run_at", "now() - interval '1 second'"));
    }

    /** running under {@code owner}: lease_token 1, lease expiring in 10 minutes, heartbeat now, attempt 1. */
    public static long running(TestDatabase db, String owner) {
        return insert(db, cols("status", "'running'", "owner_id", lit(owner), "lease_token", "1", "attempts", "1",
                "run_at", "now() - interval '1 minute'", "started_at", "now() - interval '1 minute'",
                "lease_expires_at", "now() + " + interval(LEASE), "last_heartbeat_at", "now()",
                "updated_at", "now() - interval '1 minute'"));
    }

    /**
     * running under {@code owner} whose lease expired {@code ago}: its last renewal, one lease earlier, is
     * when it was last heard of (heartbeat and updated_at).
     */
    public static long runningLeaseExpired(TestDatabase db, String owner, Duration ago) {
        String lastRenewal = "now() - " + interval(ago.plus(LEASE));
        return insert(db, cols("status", "'running'", "owner_id", lit(owner), "lease_token", "1", "attempts", "1",
                "run_at", lastRenewal, "started_at", lastRenewal, "lease_expires_at", "now() - " + interval(ago),
                "last_heartbeat_at", lastRenewal, "updated_at", lastRenewal));
    }

    /** running under {@code owner}, its lease still valid for 10 minutes, but no heartbeat for {@code ago}. */
    public static long runningHeartbeatOld(TestDatabase db, String owner, Duration ago) {
        String then = "now() - " + interval(ago);
        return insert(db, cols("status", "'running'", "owner_id", lit(owner), "lease_token", "1", "attempts", "1",
                "run_at", then, "started_at", then, "lease_expires_at", "now() + " + interval(LEASE),
                "last_heartbeat_at", then, "updated_at", then));
    }

    /** running as a pre-V2 installation left it: no owner, no lease, token 0; last touched {@code updatedAgo}. */
    public static long legacyRunning(TestDatabase db, Duration updatedAgo) {
        String then = "now() - " + interval(updatedAgo);
        return insert(db, cols("status", "'running'", "attempts", "1", "run_at", then, "started_at", then,
                "updated_at", then));
    }

    /** succeeded, failed, cancelled or quarantined a minute ago, as the transitions leave such rows. */
    public static long terminal(TestDatabase db, TaskStatus status) {
        Map<String, String> c = cols("status", lit(status.sql()), "owner_id", lit(FORMER_OWNER), "lease_token", "1",
                "attempts", "1", "run_at", "now() - interval '3 minutes'", "started_at", "now() - interval '2 minutes'",
                "last_heartbeat_at", "now() - interval '2 minutes'", "finished_at", "now() - interval '1 minute'",
                "updated_at", "now() - interval '1 minute'");
        switch (status) {
            case SUCCEEDED -> c.put("result", "'{\"ok\": true}'");
            case FAILED -> {
                c.put("attempts", "5");
                c.put("last_error", "'boom'");
            }
            case CANCELLED -> c.put("last_error", "'cancelled by operator'");
            case QUARANTINED -> c.put("last_error", "'quarantined: requeue budget 3 exhausted'");
            case COMPENSATED -> {
                c.put("attempts", "5");
                c.put("last_error", "'boom'");
                c.put("compensating", "true");
            }
            default -> throw new IllegalArgumentException(status + " is not terminal");
        }
        return insert(db, c);
    }

    /** Sets columns of an existing row ({@code setClause} is SQL, e.g. {@code "priority = 5"}); test set-up only. */
    public static void update(TestDatabase db, long id, String setClause) {
        int n = db.exec("UPDATE tasks SET " + setClause + " WHERE id = " + id);
        if (n != 1) throw new IllegalStateException("task " + id + ": updated " + n + " rows");
    }

    /** Every column of task {@code id} (values as the driver returns them: equal when stored equal). */
    public static Map<String, Object> row(TestDatabase db, long id) {
        List<Map<String, Object>> rows = db.rows("SELECT * FROM tasks WHERE id = " + id);
        if (rows.size() != 1) throw new IllegalStateException("task " + id + ": " + rows.size() + " rows");
        return rows.get(0);
    }

    /** Every row of tasks, by id: for whole-table before/after comparisons. */
    public static Map<Long, Map<String, Object>> allRows(TestDatabase db) {
        return db.rows("SELECT * FROM tasks ORDER BY id").stream()
                .collect(Collectors.toMap(r -> ((Number) r.get("id")).longValue(), r -> r, (a, b) -> a,
                        LinkedHashMap::new));
    }

    /** A registered node last seen {@code lastSeenAgo}; returns its incarnation. */
    public static UUID node(TestDatabase db, String nodeId, Duration lastSeenAgo) {
        UUID incarnation = UUID.randomUUID();
        db.exec("INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version, queues, kinds, started_at,"
                + " last_seen_at) VALUES (" + lit(nodeId) + ", '" + incarnation + "', 'test-host', 4242, 'test',"
                + " ARRAY['" + QUEUE + "'], ARRAY['" + KIND + "'], now() - " + interval(lastSeenAgo.plusMinutes(1))
                + ", now() - " + interval(lastSeenAgo) + ")");
        return incarnation;
    }

    /** {@code d} as a PostgreSQL interval expression. */
    public static String interval(Duration d) {
        return "(" + d.toMillis() + " * interval '1 millisecond')";
    }

    private static long insert(TestDatabase db, Map<String, String> columns) {
        Map<String, String> c = cols("queue", lit(QUEUE), "kind", lit(KIND), "payload", "'{\"n\": 1}'");
        c.putAll(columns);
        String sql = "INSERT INTO tasks (" + String.join(", ", c.keySet()) + ") VALUES ("
                + String.join(", ", c.values()) + ") RETURNING id";
        return ((Number) db.rows(sql).get(0).get("id")).longValue();
    }

    private static Map<String, String> cols(String... pairs) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) m.put(pairs[i], pairs[i + 1]);
        return m;
    }

    private static String lit(String s) {
        return "'" + s.replace("'", "''") + "'";
    }
}

package pgdispatch.bench;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;

/**
 * A throw-away database {@code pgdispatch_bench_<random>} on the server of {@code DATABASE_URL}: created,
 * migrated by the real migrations, dropped on {@link #close()}. Also the benchmark's window on the
 * server's own counters ({@code pg_stat_database}, {@code pg_stat_user_tables}, {@code pg_stat_statements}
 * when loaded) and its bulk set-up. The benchmark is an admin tool: the SQL here measures and prepares;
 * every task transition it causes goes through {@link TaskStore}.
 *
 * <p>Server counters are flushed by a backend at most once a second and at exit, so every measurement
 * closes the connections it measured and waits for their backends to be gone before reading.
 * {@code xact_commit} is read over a connection to the {@code postgres} database, so reading it does not
 * count; every statement this class runs inside the scratch database is counted in {@link #ownStatements}
 * and subtracted.
 */
final class ScratchDatabase implements AutoCloseable {
    private final DatabaseUrl admin;
    private final DatabaseUrl url;
    private final Connection observer;
    private final boolean statementsView;
    private long ownStatements;

    private ScratchDatabase(DatabaseUrl admin, DatabaseUrl url, Connection observer, boolean statementsView) {
        this.admin = admin;
        this.url = url;
        this.observer = observer;
        this.statementsView = statementsView;
    }

    /** Creates and migrates a new scratch database on {@code server}'s server. */
    static ScratchDatabase create(DatabaseUrl server) throws SQLException {
        DatabaseUrl admin = server.withDatabase("postgres");
        String name = "pgdispatch_bench_" + UUID.randomUUID().toString().replace("-", "").substring(0, 10);
        Connection observer = Database.connect(admin);
        try (Statement st = observer.createStatement()) {
            st.execute("CREATE DATABASE " + name); // generated name, never user input
        } catch (SQLException e) {
            observer.close();
            throw e;
        }
        DatabaseUrl url = server.withDatabase(name);
        ScratchDatabase s;
        try (Database db = Database.open(url, 3, "pgdispatch-bench-migrate")) {
            db.migrate();
            s = new ScratchDatabase(admin, url, observer, preloaded(observer));
        } catch (RuntimeException e) {
            dropQuietly(observer, name);
            throw e;
        }
        if (s.statementsView) s.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        return s;
    }

    private static boolean preloaded(Connection c) throws SQLException {
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'")) {
            rs.next();
            return rs.getBoolean(1);
        }
    }

    DatabaseUrl url() {
        return url;
    }

    String name() {
        return url.database();
    }

    /** The server and client machine, for the summary. */
    String describeServer() {
        Object v = rows("SELECT current_setting('server_version') AS v").get(0).get("v");
        return "PostgreSQL " + v + " at " + admin.host() + ":" + admin.port() + ", client JVM "
                + Runtime.version().feature() + " with " + Runtime.getRuntime().availableProcessors() + " cores";
    }

    /** Where statement counts come from: {@code pg_stat_statements} when loaded, else {@code pg_stat_database}. */
    String countSource() {
        return statementsView ? "pg_stat_statements.calls" : "pg_stat_database.xact_commit";
    }

    /** Runs one statement inside the scratch database (set-up: TRUNCATE, VACUUM, ANALYZE). */
    void exec(String sql) {
        try (Connection c = Database.connect(url); Statement st = c.createStatement()) {
            st.execute(sql);
            ownStatements++;
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    /** Rows of a query inside the scratch database, as column → value maps. */
    List<Map<String, Object>> rows(String sql, Object... params) {
        try (Connection c = Database.connect(url); PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
            List<Map<String, Object>> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                int n = rs.getMetaData().getColumnCount();
                while (rs.next()) {
                    Map<String, Object> row = new LinkedHashMap<>();
                    for (int i = 1; i <= n; i++) row.put(rs.getMetaData().getColumnLabel(i), rs.getObject(i));
                    out.add(row);
                }
            }
            ownStatements++;
            return out;
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    double number(String sql, Object... params) {
        Object v = rows(sql, params).get(0).values().iterator().next();
        return v == null ? Double.NaN : ((Number) v).doubleValue();
    }

    /** Empties the task tables and resets the node rows, pauses and limits (between repeats). */
    void reset() {
        exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, dispatcher_queues, concurrency_limits");
        exec("VACUUM ANALYZE tasks");
        exec("VACUUM ANALYZE task_event_log");
    }

    /** Inserts {@code n} pending tasks of {@code kind} with {@code payload}, in chunks, then ANALYZE. */
    void preload(int n, String kind, String payload) {
        try (Database db = Database.open(url, 3, "pgdispatch-bench-load")) {
            TaskStore store = new TaskStore(db);
            int chunk = 20_000;
            for (int done = 0; done < n; done += chunk) {
                int k = Math.min(chunk, n - done);
                store.enqueueMany("default", kind, Collections.nCopies(k, payload), 0, 5);
            }
        }
        exec("VACUUM ANALYZE tasks");
    }

    /** The server's counters for this database, after every other backend on it has gone. */
    Counters counters() {
        awaitNoBackends();
        long statements;
        if (statementsView) {
            statements = (long) number("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                    + " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    + " AND query NOT LIKE '%pg_stat%'");
        } else {
            statements = observerLong("SELECT xact_commit FROM pg_stat_database WHERE datname = ?");
        }
        Map<String, long[]> tables = new LinkedHashMap<>();
        for (Map<String, Object> r : rows("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del"
                + " FROM pg_stat_user_tables WHERE relname IN ('tasks', 'task_event_log', 'dispatcher_nodes')")) {
            tables.put((String) r.get("relname"), new long[] {((Number) r.get("n_tup_ins")).longValue(),
                    ((Number) r.get("n_tup_upd")).longValue(), ((Number) r.get("n_tup_hot_upd")).longValue(),
                    ((Number) r.get("n_tup_del")).longValue()});
        }
        return new Counters(statements, ownStatements, tables);
    }

    /** A snapshot of server counters; {@link #minus} gives what happened between two of them. */
    record Counters(long statements, long own, Map<String, long[]> tables) {
        /** Statements sent by others than this class between {@code before} and this snapshot. */
        long statementsSince(Counters before) {
            // `own` includes the table read that finished `before` (it ran after its statement count was
            // taken, so it is in the difference) and excludes the one finishing this snapshot (not yet in it)
            return statements - before.statements - (own - before.own);
        }

        long updates(String table, Counters before) {
            return tables.get(table)[1] - before.tables.get(table)[1];
        }

        long hotUpdates(String table, Counters before) {
            return tables.get(table)[2] - before.tables.get(table)[2];
        }

        long inserts(String table, Counters before) {
            return tables.get(table)[0] - before.tables.get(table)[0];
        }
    }

    /** Waits (10 s at most) until no connection to this database is open, so their counters are flushed. */
    void awaitNoBackends() {
        long until = System.nanoTime() + 10_000_000_000L;
        while (observerLong("SELECT count(*) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()") > 0) {
            if (System.nanoTime() > until) throw new IllegalStateException("connections to " + name() + " still open after 10 s");
            try {
                Thread.sleep(5); // polling the server for backends to exit; nothing to wait on
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }
    }

    private long observerLong(String sql) {
        try (Statement clear = observer.createStatement()) {
            clear.execute("SELECT pg_stat_clear_snapshot()");
            try (PreparedStatement ps = observer.prepareStatement(sql)) {
                ps.setString(1, name());
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        dropQuietly(observer, name());
    }

    private static void dropQuietly(Connection observer, String name) {
        try (Connection c = observer; Statement st = c.createStatement()) {
            st.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        } catch (SQLException e) {
            System.err.println("bench: could not drop scratch database " + name + ": " + e.getMessage());
        }
    }
}

package pgdispatch.store;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.metrics.micrometer.MicrometerMetricsTrackerFactory;
import io.micrometer.core.instrument.MeterRegistry;
import com.zaxxer.hikari.pool.HikariPool;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.MigrationInfo;
import org.flywaydb.core.api.MigrationState;
import org.flywaydb.core.api.output.MigrateResult;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.conf.MappedSchema;
import org.jooq.conf.RenderMapping;
import org.jooq.conf.Settings;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DatabaseUrl;

/** The connection pool, the migrations and the jOOQ context of one pgdispatch database. */
public final class Database implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Database.class);

    private final DatabaseUrl url;
    private final HikariDataSource pool;
    private final DSLContext dsl;

    private Database(DatabaseUrl url, HikariDataSource pool) {
        this.url = url;
        this.pool = pool;
        this.dsl = dsl(pool, url.schema());
    }

    /**
     * jOOQ over {@code dataSource} with the generated classes' schema ({@code public}) rendered as
     * {@code schema}: every statement names its tables schema-qualified, whatever the connection's
     * {@code search_path} (an application's own connection in {@code TaskClient.enqueue(Connection, ..)}).
     */
    public static DSLContext dsl(DataSource dataSource, String schema) {
        return DSL.using(dataSource, SQLDialect.POSTGRES, settings(schema));
    }

    /** The same over one connection (the caller's transaction). */
    public static DSLContext dsl(Connection connection, String schema) {
        return DSL.using(connection, SQLDialect.POSTGRES, settings(schema));
    }

    // null: names unqualified, resolved by the connection's search_path like the store's SQL text
    private static Settings settings(String schema) {
        if (schema == null) return new Settings().withRenderSchema(false);
        return new Settings().withRenderMapping(new RenderMapping().withSchemata(
                new MappedSchema().withInput(DatabaseUrl.DEFAULT_SCHEMA).withOutput(schema)));
    }

    /** Opens a pool of {@code poolSize} connections; fails fast when the server is unreachable. */
    public static Database open(DatabaseUrl url, int poolSize, String poolName) {
        return open(url, poolSize, poolName, null);
    }

    /**
     * The same, with the pool's own meters ({@code hikaricp_connections_*}, tag {@code pool}) in
     * {@code registry} when it is not null.
     */
    public static Database open(DatabaseUrl url, int poolSize, String poolName, MeterRegistry registry) {
        return open(url, poolSize, poolName, registry, java.time.Duration.ZERO);
    }

    /**
     * The same, where every read of a connection gives up after {@code socketTimeout} (zero: never):
     * the statement fails with a connection error (SQLState 08006) and the pool replaces the
     * connection. For a node's pool: its statements take milliseconds, and a connection the network
     * dropped silently would otherwise block a claimer, completer or renewer for hours. Not for
     * migrations (CREATE INDEX CONCURRENTLY on a big table runs for minutes) or operators' reports.
     */
    public static Database open(DatabaseUrl url, int poolSize, String poolName, MeterRegistry registry,
                                java.time.Duration socketTimeout) {
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(url.jdbcUrl());
        hc.setDataSourceProperties(driverProperties(url, socketTimeout));
        hc.setPoolName(poolName);
        hc.setMaximumPoolSize(poolSize);
        hc.setMinimumIdle(Math.min(2, poolSize));
        hc.setConnectionTimeout(10_000);
        // Batched statements joined to unnest(...) get a generic plan after five runs that loops over
        // every running row per element (see docs/PERFORMANCE.md): plan each execution for its arrays.
        hc.setConnectionInitSql("SET plan_cache_mode = force_custom_plan");
        if (registry != null) hc.setMetricsTrackerFactory(new MicrometerMetricsTrackerFactory(registry));
        try {
            return new Database(url, new HikariDataSource(hc));
        } catch (HikariPool.PoolInitializationException e) {
            throw new UnreachableException(url, e);
        }
    }

    /**
     * The pool could not open its first connection. The message names the database (password masked)
     * and the deepest cause, e.g. {@code cannot connect to postgresql://app:***@db.internal:5432/jobs:
     * The connection attempt failed. (UnknownHostException: db.internal)}, where Hikari alone says only
     * "Failed to initialize pool: The connection attempt failed."
     */
    public static final class UnreachableException extends RuntimeException {
        UnreachableException(DatabaseUrl url, Throwable e) {
            super("cannot connect to " + url + ": " + describe(e), e);
        }

        private static String describe(Throwable e) {
            Throwable first = e instanceof SQLException || e.getCause() == null ? e : e.getCause();
            Throwable root = first;
            while (root.getCause() != null && root.getCause() != root) root = root.getCause();
            String msg = String.valueOf(first.getMessage()).strip();
            if (root != first && root.getMessage() != null && !msg.contains(root.getMessage())) {
                msg += " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
            }
            return msg;
        }
    }

    static Properties driverProperties(DatabaseUrl url, java.time.Duration socketTimeout) {
        Properties p = new Properties();
        if (!socketTimeout.isZero()) p.setProperty("socketTimeout", Long.toString(Math.max(1, socketTimeout.toSeconds())));
        if (url.user() != null) p.setProperty("user", url.user());
        if (url.password() != null) p.setProperty("password", url.password());
        p.setProperty("ApplicationName", "pgdispatch");
        // search_path = pgdispatch's schema on every connection, so the store's SQL text (unqualified
        // names) and the migrations find their tables whatever the role's default search_path
        p.setProperty(DatabaseUrl.SCHEMA_PARAM, url.schema());
        p.setProperty("tcpKeepAlive", "true");
        return p;
    }

    /** A plain connection outside the pool (LISTEN, admin work); the caller closes it. */
    public static Connection connect(DatabaseUrl url) throws SQLException {
        return connect(url, java.time.Duration.ZERO);
    }

    /** The same, with reads giving up after {@code socketTimeout} (zero: never). */
    public static Connection connect(DatabaseUrl url, java.time.Duration socketTimeout) throws SQLException {
        return DriverManager.getConnection(url.jdbcUrl(), driverProperties(url, socketTimeout));
    }

    /** Whether the database of {@code url} exists (connecting to it; other connection errors are thrown). */
    public static boolean exists(DatabaseUrl url) throws SQLException {
        try (Connection c = connect(url)) {
            return true;
        } catch (SQLException e) {
            if (!"3D000".equals(e.getSQLState())) throw e; // 3D000 invalid_catalog_name: no such database
            return false;
        }
    }

    /**
     * Creates the database of {@code url} when it does not exist yet (connecting to the server's
     * {@code postgres} database to do so). Returns true when it was created.
     */
    public static boolean createIfMissing(DatabaseUrl url) throws SQLException {
        try {
            if (exists(url)) return false;
        } catch (SQLException e) {
            if (e.getSQLState() != null && e.getSQLState().startsWith("08")) throw new UnreachableException(url, e);
            throw e;
        }
        try (Connection admin = connect(url.withDatabase("postgres")); Statement st = admin.createStatement()) {
            // the name was checked against [A-Za-z0-9_$-] by DatabaseUrl.parse; quoted as an identifier
            st.execute("CREATE DATABASE \"" + url.database() + "\"");
            log.info("database: created {}", url.database());
            return true;
        } catch (SQLException e) {
            if ("42P04".equals(e.getSQLState())) return false; // created meanwhile by another node
            throw e;
        }
    }

    /**
     * Drops the database of {@code url} (closing its other sessions) and creates it empty: for the
     * demo's own database only, never one that holds work.
     */
    public static void recreate(DatabaseUrl url) throws SQLException {
        try (Connection admin = connect(url.withDatabase("postgres")); Statement st = admin.createStatement()) {
            // the name was checked against [A-Za-z0-9_$-] by the caller; quoted as an identifier
            st.execute("DROP DATABASE IF EXISTS \"" + url.database() + "\" WITH (FORCE)");
            st.execute("CREATE DATABASE \"" + url.database() + "\"");
        }
    }

    /** Flyway over {@code dataSource} in the default schema; {@code baselineVersion} adopts an existing table. */
    public static Flyway flyway(DataSource dataSource, String baselineVersion) {
        return Migrations.flyway(dataSource, DatabaseUrl.DEFAULT_SCHEMA, baselineVersion);
    }

    /** The migrations of this database's schema. */
    public Migrations migrations() {
        return new Migrations(pool, url.schema());
    }

    public Flyway flyway() {
        return migrations().flyway();
    }

    public MigrateResult migrate() {
        return migrations().migrate(null).flyway();
    }

    /**
     * Refuses to run against a schema this code does not match: older (pending migrations) or newer
     * (migrations applied that this build does not know). Returns the current version.
     */
    public String requireCurrentSchema() {
        migrations().requireCarriedOver(url.database());
        var info = flyway().info();
        MigrationInfo current = info.current();
        String have = current == null ? "none" : current.getVersion().getVersion();
        MigrationInfo[] all = info.all();
        String latestKnown = latestKnown(all);
        String where = "database " + url.database() + (url.schema().equals(DatabaseUrl.DEFAULT_SCHEMA) ? ""
                : " (schema " + url.schema() + ")");
        if (info.pending().length > 0) {
            throw new SchemaMismatchException(where + " is at schema version " + have
                    + " but this pgdispatch needs " + latestKnown + ": run `pgdispatch migrate` first");
        }
        for (MigrationInfo m : all) {
            if (isFuture(m)) {
                throw new SchemaMismatchException(where + " is at schema version " + have
                        + ", newer than this pgdispatch knows (" + latestKnown + "): upgrade pgdispatch");
            }
        }
        return have;
    }

    /** The schema history as last checked by {@link #checkSchema()}: its fingerprint and the version found. */
    private record SchemaSeen(String history, String version) {}

    private volatile SchemaSeen schemaSeen;
    private volatile String historyTable;

    /**
     * {@link #requireCurrentSchema()} for a probe that runs every few seconds: one query reads the
     * schema history's fingerprint (rank, version and success of each row, a handful of rows); only when
     * it differs from the last check is Flyway built and asked again (it reads every migration on the
     * class path: too much per request).
     */
    public String checkSchema() {
        String table = historyTable;
        if (table == null) {
            var conf = flyway().getConfiguration();
            table = (conf.getDefaultSchema() == null ? "" : quoteIdent(conf.getDefaultSchema()) + ".") + quoteIdent(conf.getTable());
            historyTable = table;
        }
        String history;
        try (Connection c = pool.getConnection(); Statement st = c.createStatement();
             var rs = st.executeQuery("SELECT string_agg(installed_rank || ':' || coalesce(version, '') || ':' || success, ','"
                     + " ORDER BY installed_rank) FROM " + table)) {
            rs.next();
            history = String.valueOf(rs.getString(1));
        } catch (SQLException e) {
            // no history table (an unmigrated database): the full check below says so in its own words
            if (!"42P01".equals(e.getSQLState())) throw new StoreException(e);
            history = "none";
        }
        SchemaSeen seen = schemaSeen;
        if (seen != null && seen.history().equals(history)) return seen.version();
        String version = requireCurrentSchema();
        schemaSeen = new SchemaSeen(history, version);
        return version;
    }

    /** An identifier, quoted. */
    private static String quoteIdent(String name) {
        return "\"" + name.replace("\"", "\"\"") + "\"";
    }

    /** The newest migration version in this build. */
    public static String expectedSchemaVersion(DataSource ds) {
        return expectedSchemaVersion(ds, DatabaseUrl.DEFAULT_SCHEMA);
    }

    /** The newest migration version in this build. */
    public static String expectedSchemaVersion(DataSource ds, String schema) {
        return latestKnown(Migrations.flyway(ds, schema, null).info().all());
    }

    // info().all() also lists history rows of migrations this build lacks (FUTURE_*): they are not ours
    private static String latestKnown(MigrationInfo[] all) {
        for (int i = all.length - 1; i >= 0; i--) {
            if (!isFuture(all[i])) return all[i].getVersion().getVersion();
        }
        return "none";
    }

    private static boolean isFuture(MigrationInfo m) {
        return m.getState() == MigrationState.FUTURE_SUCCESS || m.getState() == MigrationState.FUTURE_FAILED;
    }

    public DSLContext dsl() {
        return dsl;
    }

    public DataSource dataSource() {
        return pool;
    }

    public HikariDataSource pool() {
        return pool;
    }

    public DatabaseUrl url() {
        return url;
    }

    @Override
    public void close() {
        pool.close();
    }

    /** The database schema is older or newer than this build. */
    public static final class SchemaMismatchException extends RuntimeException {
        public SchemaMismatchException(String message) {
            super(message);
        }
    }
}

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
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.flywaydb.core.api.output.MigrateResult;
import org.flywaydb.database.postgresql.PostgreSQLConfigurationExtension;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DatabaseUrl;

/** The connection pool, the migrations and the jOOQ context of one pgdispatch database. */
public final class Database implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Database.class);

    /** Where the migrations live inside the jar (copied there from db/migrations by the build). */
    public static final String MIGRATIONS = "classpath:db/migration";

    private final DatabaseUrl url;
    private final HikariDataSource pool;
    private final DSLContext dsl;

    private Database(DatabaseUrl url, HikariDataSource pool) {
        this.url = url;
        this.pool = pool;
        this.dsl = DSL.using(pool, SQLDialect.POSTGRES);
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

    /** Flyway over {@code dataSource} with our settings; {@code baselineVersion} adopts an existing table. */
    public static Flyway flyway(DataSource dataSource, String baselineVersion) {
        FluentConfiguration cfg = Flyway.configure()
                .dataSource(dataSource)
                .locations(MIGRATIONS)
                .cleanDisabled(true);
        if (baselineVersion != null) {
            cfg.baselineOnMigrate(true).baselineVersion(baselineVersion)
                    .baselineDescription("adopted existing installation");
        }
        // CREATE INDEX CONCURRENTLY waits for every other transaction, including the idle one that holds
        // Flyway's transactional advisory lock: use the session-level lock instead, or migrate hangs.
        cfg.getConfigurationExtension(PostgreSQLConfigurationExtension.class).setTransactionalLock(false);
        return cfg.load();
    }

    public Flyway flyway() {
        return flyway(pool, null);
    }

    public MigrateResult migrate() {
        return flyway().migrate();
    }

    /**
     * Refuses to run against a schema this code does not match: older (pending migrations) or newer
     * (migrations applied that this build does not know). Returns the current version.
     */
    public String requireCurrentSchema() {
        var info = flyway().info();
        MigrationInfo current = info.current();
        String have = current == null ? "none" : current.getVersion().getVersion();
        MigrationInfo[] all = info.all();
        String latestKnown = latestKnown(all);
        if (info.pending().length > 0) {
            throw new SchemaMismatchException("database " + url.database() + " is at schema version " + have
                    + " but this pgdispatch needs " + latestKnown + ": run `pgdispatch migrate` first");
        }
        for (MigrationInfo m : all) {
            if (isFuture(m)) {
                throw new SchemaMismatchException("database " + url.database() + " is at schema version " + have
                        + ", newer than this pgdispatch knows (" + latestKnown + "): upgrade pgdispatch");
            }
        }
        return have;
    }

    /** The newest migration version in this build. */
    public static String expectedSchemaVersion(DataSource ds) {
        return latestKnown(flyway(ds, null).info().all());
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

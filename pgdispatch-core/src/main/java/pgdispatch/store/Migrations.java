package pgdispatch.store;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.MigrationInfo;
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.flywaydb.core.api.output.MigrateResult;
import org.flywaydb.database.postgresql.PostgreSQLConfigurationExtension;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs and upgrades pgdispatch's tables in one schema of a database that may hold an application's
 * own tables (and its own Flyway history): pgdispatch's migrations live at their own classpath location
 * and record themselves in their own history table. Before Flyway runs, the schema is inspected: an
 * older pgdispatch's history in {@code flyway_schema_history} is carried over, unrelated tables are
 * installed beside, and a {@code tasks} table without history is refused with the adoption path named.
 */
public final class Migrations {
    private static final Logger log = LoggerFactory.getLogger(Migrations.class);

    /** Where the migrations live inside the jar (copied there from db/migrations by the build). */
    public static final String LOCATION = "classpath:pgdispatch/db/migration";
    /** pgdispatch's own Flyway history table, so a host that uses Flyway for its schema is unaffected. */
    public static final String HISTORY_TABLE = "pgdispatch_schema_history";
    /** Flyway's default table, where pgdispatch kept its history before it had its own (issue 12). */
    public static final String LEGACY_HISTORY_TABLE = "flyway_schema_history";
    /**
     * The baseline recorded when the schema already holds the application's tables: Flyway refuses a
     * non-empty schema without one; version 0 comes before V1, so every migration still runs.
     */
    public static final String BESIDE_BASELINE = "0";
    /** The columns of db/migrations/V1__tasks.sql: a table adopted at version 1 must have them. */
    static final List<String> V1_COLUMNS = List.of("id", "queue", "kind", "payload", "priority", "status", "attempts",
            "max_attempts", "run_at", "last_error", "result", "created_at", "updated_at", "started_at", "finished_at");
    /** Serialises the history carry-over of concurrent migrations ("pgdhist1" as bytes). */
    static final long CARRY_OVER_LOCK = 0x7067646869737431L;

    private final DataSource dataSource;
    private final String schema;

    public Migrations(DataSource dataSource, String schema) {
        this.dataSource = dataSource;
        this.schema = schema;
    }

    /**
     * Flyway over {@code dataSource} with our location, history table and schema (created when missing;
     * migrations run with {@code search_path} set to it); {@code baselineVersion} (null: none) records that
     * version as applied without running it.
     */
    public static Flyway flyway(DataSource dataSource, String schema, String baselineVersion) {
        FluentConfiguration cfg = Flyway.configure()
                .dataSource(dataSource)
                .locations(LOCATION)
                .table(HISTORY_TABLE)
                .schemas(schema)
                .defaultSchema(schema)
                .cleanDisabled(true);
        if (baselineVersion != null) {
            cfg.baselineOnMigrate(true).baselineVersion(baselineVersion)
                    .baselineDescription(BESIDE_BASELINE.equals(baselineVersion)
                            ? "installed beside existing tables" : "adopted existing installation");
        }
        sessionLevelLock(cfg);
        return cfg.load();
    }

    /**
     * CREATE INDEX CONCURRENTLY waits for every other transaction, including the idle one that holds
     * Flyway's transactional advisory lock: use the session-level lock instead, or migrate hangs. The
     * typed call exists from Flyway 12; Spring Boot 3.5 applications run Flyway 11, whose plugin register
     * holds the same extension (the map-based property needs a Jackson module we do not ship).
     */
    private static void sessionLevelLock(FluentConfiguration cfg) {
        PostgreSQLConfigurationExtension ext;
        try {
            ext = cfg.getConfigurationExtension(PostgreSQLConfigurationExtension.class);
        } catch (NoSuchMethodError flyway11) {
            try {
                Object register = cfg.getClass().getMethod("getPluginRegister").invoke(cfg);
                ext = (PostgreSQLConfigurationExtension) register.getClass().getMethod("getPlugin", Class.class)
                        .invoke(register, PostgreSQLConfigurationExtension.class);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("this Flyway version offers no way to turn off its transactional lock", e);
            }
        }
        ext.setTransactionalLock(false);
    }

    public Flyway flyway() {
        return flyway(dataSource, schema, null);
    }

    /** What {@link #migrate} found and did besides applying migrations, one sentence each. */
    public record Result(MigrateResult flyway, List<String> notes) {}

    /** What {@link #migrate} would do: the migrations it would apply and the notes; nothing is changed. */
    public record Preview(List<MigrationInfo> pending, List<String> notes) {}

    /**
     * Brings the schema up to date. {@code baselineVersion} (null: none) adopts an existing {@code tasks}
     * table of that migration's shape. Refuses, changing nothing, with {@link RefusedException}.
     */
    public Result migrate(String baselineVersion) {
        List<String> notes = new ArrayList<>();
        String baseline = decide(inspect(), baselineVersion, notes);
        if (notes.stream().anyMatch(n -> n.startsWith("carried"))) carryOverLegacyHistory();
        MigrateResult r = flyway(dataSource, schema, baseline).migrate();
        for (String n : notes) log.info("migrations: {}", n);
        return new Result(r, List.copyOf(notes));
    }

    public Preview preview(String baselineVersion) {
        List<String> notes = new ArrayList<>();
        State s = inspect();
        String baseline = decide(s, baselineVersion, notes);
        List<MigrationInfo> pending = new ArrayList<>();
        // with the history still in the legacy table, Flyway would list every migration as pending
        Set<String> applied = s.legacyOurs() && !s.history() ? s.legacyApplied() : Set.of();
        for (MigrationInfo m : flyway().info().pending()) {
            String v = m.getVersion() == null ? null : m.getVersion().getVersion();
            // versions compare as Flyway orders them: V10_1 is 10.1, not a whole number
            if (v != null && (applied.contains(v) || baseline != null
                    && m.getVersion().compareTo(org.flywaydb.core.api.MigrationVersion.fromVersion(baseline)) <= 0)) continue;
            pending.add(m);
        }
        return new Preview(pending, List.copyOf(notes));
    }

    /** The history to check a node against: refuses (naming the way out) while it is still in the legacy table. */
    void requireCarriedOver(String database) {
        State s = inspect();
        if (!s.history() && s.legacyOurs()) {
            throw new Database.SchemaMismatchException("database " + database + " keeps pgdispatch's migration history in "
                    + qualified(LEGACY_HISTORY_TABLE) + " (an older pgdispatch): run `pgdispatch migrate` once to carry it"
                    + " over to " + qualified(HISTORY_TABLE));
        }
    }

    /** The migration could not start: the message says why and what to run instead; nothing was changed. */
    public static final class RefusedException extends RuntimeException {
        public RefusedException(String message) {
            super(message);
        }
    }

    /**
     * The schema as found: our history table, an older pgdispatch's history in Flyway's default table
     * (and the versions it records), a {@code tasks} table with its columns, and how many other relations.
     */
    record State(boolean history, boolean legacyOurs, Set<String> legacyApplied,
                 boolean tasks, Set<String> tasksColumns, int otherRelations) {}

    private String decide(State s, String baselineVersion, List<String> notes) {
        if (!s.history() && s.legacyOurs()) {
            notes.add("carried the migration history over from " + qualified(LEGACY_HISTORY_TABLE) + " to "
                    + qualified(HISTORY_TABLE));
            return null;
        }
        if (s.history()) return null; // Flyway ignores a baseline once its history exists: a plain migrate
        if (baselineVersion != null) {
            if (!s.tasks()) {
                throw new RefusedException("--baseline-version " + baselineVersion + " adopts an existing tasks table,"
                        + " but schema " + schema + " has none; nothing was changed. To install pgdispatch, run"
                        + " `pgdispatch migrate` without --baseline-version");
            }
            if ("1".equals(baselineVersion)) {
                List<String> missing = V1_COLUMNS.stream().filter(c -> !s.tasksColumns().contains(c)).toList();
                if (!missing.isEmpty()) {
                    throw new RefusedException("--baseline-version 1: table " + qualified("tasks") + " lacks column(s) "
                            + String.join(", ", missing) + " of db/migrations/V1__tasks.sql, so it is not a pgdispatch"
                            + " tasks table; nothing was changed. Install pgdispatch into its own schema with"
                            + " PGDISPATCH_SCHEMA=pgdispatch");
                }
            }
            notes.add("adopted the existing tasks table as migration " + baselineVersion);
            return baselineVersion;
        }
        if (s.tasks()) {
            throw new RefusedException("schema " + schema + " already has a tasks table but no pgdispatch migration"
                    + " history; nothing was changed. If it is a pgdispatch installation from before leases, adopt it with"
                    + " `pgdispatch migrate --baseline-version 1` (scripts/adopt-existing-db.sh); if it belongs to another"
                    + " application, install pgdispatch into a schema of its own with PGDISPATCH_SCHEMA=pgdispatch");
        }
        if (s.otherRelations() > 0) {
            notes.add("installed beside " + s.otherRelations() + " existing table(s)/view(s) of schema " + schema);
            return BESIDE_BASELINE;
        }
        return null;
    }

    State inspect() {
        try (Connection c = dataSource.getConnection()) {
            boolean history = relation(c, HISTORY_TABLE);
            boolean legacy = relation(c, LEGACY_HISTORY_TABLE);
            Set<String> legacyApplied = new LinkedHashSet<>();
            boolean legacyOurs = false;
            if (legacy) {
                Set<String> ours = ourScripts();
                int foreign = 0;
                try (Statement st = c.createStatement();
                     ResultSet rs = st.executeQuery("SELECT version, type, script, success FROM "
                             + qualified(LEGACY_HISTORY_TABLE))) {
                    while (rs.next()) {
                        String type = rs.getString("type");
                        if ("SCHEMA".equals(type)) continue;
                        if ("BASELINE".equals(type) || ours.contains(rs.getString("script"))) {
                            if (rs.getBoolean("success") && rs.getString("version") != null) {
                                legacyApplied.add(rs.getString("version"));
                            }
                            if (!"BASELINE".equals(type)) legacyOurs = true;
                        } else {
                            foreign++;
                        }
                    }
                }
                // another application's history (its own V1 and so on) stays where it is, untouched
                legacyOurs = (legacyOurs || !legacyApplied.isEmpty()) && foreign == 0;
            }
            Set<String> columns = new LinkedHashSet<>();
            try (PreparedStatement ps = c.prepareStatement("""
                    SELECT a.attname FROM pg_attribute a
                      JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                     WHERE n.nspname = ? AND r.relname = 'tasks' AND a.attnum > 0 AND NOT a.attisdropped""")) {
                ps.setString(1, schema);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) columns.add(rs.getString(1));
                }
            }
            int others;
            try (PreparedStatement ps = c.prepareStatement("""
                    SELECT count(*) FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
                     WHERE n.nspname = ? AND r.relkind IN ('r', 'p', 'v', 'm', 'f')
                       AND r.relname <> ?""")) {
                ps.setString(1, schema);
                ps.setString(2, HISTORY_TABLE);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    others = rs.getInt(1);
                }
            }
            return new State(history, legacyOurs, legacyApplied, !columns.isEmpty(), columns, others);
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }

    /** The script names of this build's migrations, as Flyway records them in its history. */
    private Set<String> ourScripts() {
        Set<String> out = new LinkedHashSet<>();
        for (MigrationInfo m : flyway().info().all()) {
            if (m.getScript() != null) out.add(m.getScript());
        }
        return out;
    }

    /**
     * Renames the legacy history table (with its primary key and index) to ours: one transaction, under an
     * advisory lock, re-checked inside it, so two nodes migrating at once carry it over once.
     */
    private void carryOverLegacyHistory() {
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.execute("SELECT pg_advisory_xact_lock(" + CARRY_OVER_LOCK + ")");
                if (!relation(c, HISTORY_TABLE) && relation(c, LEGACY_HISTORY_TABLE)) {
                    st.execute("ALTER TABLE " + qualified(LEGACY_HISTORY_TABLE) + " RENAME TO " + HISTORY_TABLE);
                    if (exists(c, "SELECT 1 FROM pg_constraint WHERE conname = ? AND connamespace = ?::regnamespace",
                            LEGACY_HISTORY_TABLE + "_pk", schema)) {
                        st.execute("ALTER TABLE " + qualified(HISTORY_TABLE) + " RENAME CONSTRAINT "
                                + LEGACY_HISTORY_TABLE + "_pk TO " + HISTORY_TABLE + "_pk");
                    }
                    st.execute("ALTER INDEX IF EXISTS " + qualified(LEGACY_HISTORY_TABLE + "_s_idx") + " RENAME TO "
                            + HISTORY_TABLE + "_s_idx");
                }
            }
            c.commit();
        } catch (SQLException e) {
            throw new StoreException(e);
        }
    }

    private boolean relation(Connection c, String table) throws SQLException {
        return exists(c, "SELECT 1 FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace"
                + " WHERE n.nspname = ? AND r.relname = ?", schema, table);
    }

    private static boolean exists(Connection c, String sql, String... args) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) ps.setString(i + 1, args[i]);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        }
    }

    // the schema name was checked against DatabaseUrl.SCHEMA_NAME (lower case, no quoting needed)
    private String qualified(String name) {
        return schema + "." + name;
    }
}

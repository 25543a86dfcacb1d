package pgdispatch.testing;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import org.jooq.DSLContext;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;

/**
 * JUnit extension: a fresh database per test class, cloned from the migrated template and dropped
 * afterwards. Use as {@code @RegisterExtension static final TestDatabase db = new TestDatabase();}.
 * Pool connections run in a non-UTC time zone so no code can lean on the JVM's or server's zone.
 */
public final class TestDatabase implements BeforeAllCallback, AfterAllCallback {
    private final boolean migrated;
    private int depth;
    private String name;
    private DatabaseUrl url;
    private Database database;

    public TestDatabase() {
        this(true);
    }

    private TestDatabase(boolean migrated) {
        this.migrated = migrated;
    }

    /** An empty database, for migration tests. */
    public static TestDatabase empty() {
        return new TestDatabase(false);
    }

    @Override
    public synchronized void beforeAll(ExtensionContext context) {
        // @Nested classes inherit the enclosing class's extension and call beforeAll/afterAll again:
        // only the outermost class creates and drops the database, nested ones share it
        if (depth++ > 0) return;
        String cls = context.getRequiredTestClass().getSimpleName().toLowerCase(Locale.ROOT);
        name = "pgd_t_" + cls.substring(0, Math.min(30, cls.length())) + "_" + UUID.randomUUID().toString().substring(0, 6);
        PgServer server = PgServer.get();
        url = migrated ? server.createFromTemplate(name) : server.createEmpty(name);
        url = new DatabaseUrl(url.host(), url.port(), url.database(), url.user(), url.password(),
                Map.of("options", "-c TimeZone=America/Los_Angeles"));
        database = Database.open(url, 8, "pgd-test");
    }

    @Override
    public synchronized void afterAll(ExtensionContext context) {
        if (--depth > 0) return;
        if (database != null) database.close();
        PgServer.get().drop(name);
    }

    public DatabaseUrl url() {
        return url;
    }

    public Database database() {
        return database;
    }

    public DSLContext dsl() {
        return database.dsl();
    }

    /** The default configuration pointed at this database, with a fixed node id. */
    public DispatcherConfig config() {
        return DispatcherConfig.defaults(url).withNode("node-a", List.of("default"), 4);
    }

    /** Runs SQL (test set-up only); returns the update count of the last statement. */
    public int exec(String sql) {
        try (Connection c = database.dataSource().getConnection(); Statement st = c.createStatement()) {
            return st.executeUpdate(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    /** The rows of a query, as column → value maps (test assertions). */
    public List<Map<String, Object>> rows(String sql) {
        try (Connection c = database.dataSource().getConnection(); Statement st = c.createStatement();
             ResultSet rs = st.executeQuery(sql)) {
            List<Map<String, Object>> out = new ArrayList<>();
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                Map<String, Object> row = new java.util.LinkedHashMap<>();
                for (int i = 1; i <= n; i++) row.put(rs.getMetaData().getColumnLabel(i), rs.getObject(i));
                out.add(row);
            }
            return out;
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    public long count(String sqlWhere) {
        Object v = rows("SELECT count(*) AS n FROM " + sqlWhere).get(0).get("n");
        return ((Number) v).longValue();
    }

    /** How many migration files db/migrations holds (numbers may have gaps: each engineer has a range). */
    public static int migrationCount() {
        return migrationVersions().size();
    }

    /** The newest version among the files in db/migrations as Flyway spells it: {@code V10_1__x.sql} is 10.1. */
    public static String latestVersion() {
        return migrationVersions().stream().max(java.util.Comparator.naturalOrder()).orElseThrow().getVersion();
    }

    /** The major number of the newest migration (V10_1: 10): a version above it is newer than any file. */
    public static int latestMigration() {
        return org.flywaydb.core.api.MigrationVersion.fromVersion(latestVersion()).getMajor().intValue();
    }

    /** The versions of the migration files in db/migrations ({@code V10_1__x.sql} is 10.1). */
    private static List<org.flywaydb.core.api.MigrationVersion> migrationVersions() {
        java.util.regex.Pattern v = java.util.regex.Pattern.compile("V([0-9_]+)__.*\\.sql");
        try (var files = java.nio.file.Files.list(java.nio.file.Path.of("db/migrations"))) {
            return files.map(f -> v.matcher(f.getFileName().toString())).filter(java.util.regex.Matcher::matches)
                    .map(m -> org.flywaydb.core.api.MigrationVersion.fromVersion(m.group(1).replace('_', '.'))).toList();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}

package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.testing.PgServer;
import pgdispatch.testing.TestDatabase;

/**
 * pgdispatch inside an application's database (issue 12): beside unrelated tables and the host's own
 * Flyway history, in a schema of its own whatever the caller's search_path, carried over from the old
 * history table, and the refusals that leave nothing half-applied. Each test has its own empty database.
 */
class InstallationTest {
    private final String name = "pgd_t_install_" + Long.toHexString(System.nanoTime());
    private Dispatcher node;

    @AfterEach
    void drop() {
        if (node != null) node.halt();
        PgServer.get().drop(name);
    }

    private DatabaseUrl fresh() {
        return PgServer.get().createEmpty(name);
    }

    private static void exec(DatabaseUrl url, String sql) throws Exception {
        try (Connection c = Database.connect(url); Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    private static long count(DatabaseUrl url, String sql) throws Exception {
        try (Connection c = Database.connect(url); Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** An application's connection: its own search_path (public only), not pgdispatch's pool. */
    private static Connection applicationConnection(DatabaseUrl url) throws Exception {
        return DriverManager.getConnection(applicationJdbcUrl(url), url.user(), url.password());
    }

    private static String applicationJdbcUrl(DatabaseUrl url) {
        return new DatabaseUrl(url.host(), url.port(), url.database(), url.user(), url.password(),
                java.util.Map.of("currentSchema", "public")).jdbcUrl();
    }

    /** An application that already uses Flyway for its own tables: its V1, its history, its data. */
    private static void applicationSchema(DatabaseUrl url) throws Exception {
        Flyway.configure().dataSource(applicationJdbcUrl(url), url.user(), url.password())
                .locations("classpath:app/db/migration").load().migrate();
        exec(url, "INSERT INTO public.orders (item) VALUES ('book')");
    }

    /** Starts a node with the built-in kinds and runs one echo task enqueued in the application's transaction. */
    private void lifecycle(DatabaseUrl url) throws Exception {
        DispatcherConfig cfg = DispatcherConfig.defaults(url).withNode("node-a", List.of("default"), 2)
                .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(2))
                .withPollInterval(Duration.ofMillis(200)).withDrainTimeout(Duration.ofMillis(500)).withHttpPort(DispatcherConfig.HTTP_OFF);
        node = Dispatcher.builder(cfg).build().start();
        long id;
        try (Database pool = Database.open(url, 2, "pgd-test-client"); Connection app = applicationConnection(url)) {
            TaskClient client = new TaskClient(new TaskStore(pool), 1 << 20);
            app.setAutoCommit(false);
            try (Statement st = app.createStatement()) {
                st.execute("INSERT INTO orders (item) VALUES ('pen')");
            }
            id = client.enqueue(app, TaskClient.Enqueue.of("echo", "{\"order\": \"pen\"}"));
            app.commit();
        }
        String tasks = url.schema() + ".tasks";
        await().atMost(20, TimeUnit.SECONDS).until(() -> count(url, "SELECT count(*) FROM " + tasks
                + " WHERE status = 'succeeded' AND id = " + id) == 1);
        assertThat(count(url, "SELECT count(*) FROM " + url.schema() + ".task_events WHERE task_id = " + id
                + " AND event IN ('claimed', 'succeeded')")).isEqualTo(2);
        node.stop();
        assertThat(count(url, "SELECT count(*) FROM " + url.schema() + ".dispatcher_nodes WHERE stopped_at IS NOT NULL"))
                .isOne();
    }

    @Test
    void installsBesideAnApplicationsTablesAndFlywayHistoryAndRunsTheWholeLifecycle() throws Exception {
        DatabaseUrl url = fresh();
        applicationSchema(url);

        Migrations.Result r;
        try (Database db = Database.open(url, 2, "pgd-test-migrate")) {
            r = db.migrations().migrate(null);
            assertThat(db.requireCurrentSchema()).isEqualTo(TestDatabase.latestVersion());
        }

        assertThat(r.notes()).containsExactly("installed beside 2 existing table(s)/view(s) of schema public");
        assertThat(r.flyway().migrationsExecuted).isEqualTo(TestDatabase.migrationCount());
        // the application's history and rows are untouched; ours is separate
        assertThat(count(url, "SELECT count(*) FROM public.flyway_schema_history WHERE script = 'V1__orders.sql'")).isOne();
        assertThat(count(url, "SELECT count(*) FROM public.flyway_schema_history")).isOne();
        assertThat(count(url, "SELECT count(*) FROM public.orders")).isOne();
        assertThat(count(url, "SELECT count(*) FROM public.pgdispatch_schema_history WHERE version = '1' AND success")).isOne();
        lifecycle(url);
        assertThat(count(url, "SELECT count(*) FROM public.orders")).isEqualTo(2);
    }

    @Test
    void installsIntoItsOwnSchemaAndWorksWhateverTheCallersSearchPath() throws Exception {
        DatabaseUrl url = fresh().withSchema("pgd_jobs");
        applicationSchema(url);
        // the application even has a table called tasks of its own in public
        exec(url, "CREATE TABLE public.tasks (id int PRIMARY KEY, title text)");

        try (Database db = Database.open(url, 2, "pgd-test-migrate")) {
            assertThat(db.migrations().migrate(null).notes()).isEmpty();
        }

        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'pgd_jobs'"
                + " AND tablename IN ('tasks', 'task_event_log', 'dispatcher_nodes', 'pgdispatch_schema_history')")).isEqualTo(4);
        assertThat(count(url, "SELECT count(*) FROM pg_views WHERE schemaname = 'pgd_jobs' AND viewname = 'task_events'")).isEqualTo(1);
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                + " AND tablename IN ('task_event_log', 'dispatcher_nodes', 'pgdispatch_schema_history')")).isZero();
        lifecycle(url);
        assertThat(count(url, "SELECT count(*) FROM public.tasks")).isZero();

        // the cleanup function, called qualified from a session whose search_path is public, works in its schema
        exec(url, "INSERT INTO pgd_jobs.tasks (kind, status, owner_id, lease_expires_at, lease_token)"
                + " VALUES ('echo', 'running', 'gone', now() - interval '1 hour', 3)");
        try (Connection app = applicationConnection(url); Statement st = app.createStatement();
             ResultSet rs = st.executeQuery("SELECT action FROM pgd_jobs.pgdispatch_reap_stale(interval '1 minute', 3, 10, false)")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getString(1)).isEqualTo("requeue");
        }
        assertThat(count(url, "SELECT count(*) FROM pgd_jobs.tasks WHERE owner_id IS NULL AND status = 'pending'")).isOne();
    }

    @Test
    void anOlderInstallationsFlywaySchemaHistoryIsCarriedOver() throws Exception {
        DatabaseUrl url = fresh();
        try (Database db = Database.open(url, 2, "pgd-test-migrate")) {
            // as pgdispatch before issue 12 installed itself: Flyway's default history table, up to V5
            Flyway.configure().configuration(db.flyway().getConfiguration()).table(Migrations.LEGACY_HISTORY_TABLE)
                    .target("5").load().migrate();
            assertThatThrownBy(db::requireCurrentSchema).isInstanceOf(Database.SchemaMismatchException.class)
                    .hasMessage("database " + url.database() + " keeps pgdispatch's migration history in"
                            + " public.flyway_schema_history (an older pgdispatch): run `pgdispatch migrate` once to"
                            + " carry it over to public.pgdispatch_schema_history");

            Migrations.Result r = db.migrations().migrate(null);

            assertThat(r.notes()).containsExactly("carried the migration history over from public.flyway_schema_history"
                    + " to public.pgdispatch_schema_history");
            assertThat(r.flyway().migrationsExecuted).isEqualTo(TestDatabase.migrationCount() - 5);
            assertThat(db.requireCurrentSchema()).isEqualTo(TestDatabase.latestVersion());
        }
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'flyway_schema_history'")).isZero();
        assertThat(count(url, "SELECT count(*) FROM pgdispatch_schema_history WHERE version IN ('1', '5') AND success")).isEqualTo(2);
        assertThat(count(url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'pgdispatch_schema_history_s_idx'")).isOne();
    }

    @Test
    void aTasksTableWithoutHistoryIsRefusedNamingTheAdoptionPath() throws Exception {
        DatabaseUrl url = fresh();
        exec(url, Files.readString(Path.of("db/migrations/V1__tasks.sql")));
        try (Database db = Database.open(url, 2, "pgd-test-migrate")) {
            assertThatThrownBy(() -> db.migrations().migrate(null)).isInstanceOf(Migrations.RefusedException.class)
                    .hasMessage("schema public already has a tasks table but no pgdispatch migration history; nothing was"
                            + " changed. If it is a pgdispatch installation from before leases, adopt it with"
                            + " `pgdispatch migrate --baseline-version 1` (scripts/adopt-existing-db.sh); if it belongs to"
                            + " another application, install pgdispatch into a schema of its own with"
                            + " PGDISPATCH_SCHEMA=pgdispatch");
        }
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'pgdispatch_schema_history'")).isZero();
    }

    @Test
    void baselineVersion1WithoutATasksTableIsRefusedAndLeavesNoBaseline() throws Exception {
        DatabaseUrl url = fresh();
        applicationSchema(url);
        try (Database db = Database.open(url, 2, "pgd-test-migrate")) {
            assertThatThrownBy(() -> db.migrations().migrate("1")).isInstanceOf(Migrations.RefusedException.class)
                    .hasMessage("--baseline-version 1 adopts an existing tasks table, but schema public has none;"
                            + " nothing was changed. To install pgdispatch, run `pgdispatch migrate` without --baseline-version");
            assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'pgdispatch_schema_history'")).isZero();

            // and the plain migrate that the message names then works
            assertThat(db.migrations().migrate(null).flyway().migrationsExecuted).isEqualTo(TestDatabase.migrationCount());
        }
    }

    @Test
    void baselineVersion1OverAnotherApplicationsTasksTableIsRefused() throws Exception {
        DatabaseUrl url = fresh();
        exec(url, "CREATE TABLE tasks (id int PRIMARY KEY, title text, done boolean)");
        try (Database db = Database.open(url, 2, "pgd-test-migrate")) {
            assertThatThrownBy(() -> db.migrations().migrate("1")).isInstanceOf(Migrations.RefusedException.class)
                    .hasMessageStartingWith("--baseline-version 1: table public.tasks lacks column(s) queue, kind, payload,")
                    .hasMessageEndingWith("so it is not a pgdispatch tasks table; nothing was changed. Install pgdispatch"
                            + " into its own schema with PGDISPATCH_SCHEMA=pgdispatch");
        }
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'pgdispatch_schema_history'")).isZero();
    }
}

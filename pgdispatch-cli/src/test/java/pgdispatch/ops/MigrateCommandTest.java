package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Statement;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;
import pgdispatch.testing.PgServer;

class MigrateCommandTest {
    private static final String LATEST = pgdispatch.testing.TestDatabase.latestVersion();
    /** Migration files: not LATEST, each engineer's migrations have their own number range (gaps). */
    private static final int COUNT = pgdispatch.testing.TestDatabase.migrationCount();
    private final String name = "pgd_ops_migrate_" + UUID.randomUUID().toString().substring(0, 8);

    @AfterEach
    void drop() {
        PgServer.get().drop(name);
    }

    private static long count(DatabaseUrl url, String sql) throws Exception {
        try (Connection c = Database.connect(url); Statement st = c.createStatement(); var rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static void exec(DatabaseUrl url, String sql) throws Exception {
        try (Connection c = Database.connect(url); Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    @Test
    void migratesAFreshDatabaseToTheLatestVersion() throws Exception {
        DatabaseUrl url = PgServer.get().createEmpty(name);

        Cli.Run r = Cli.run(url, "migrate");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo("database " + name + ": applied " + COUNT + " migration(s); schema version " + LATEST + "\n");
        assertThat(count(url, "SELECT count(*) FROM pgdispatch_schema_history WHERE success")).isEqualTo(COUNT);
        assertThat(count(url, "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('tasks', 'task_event_log', 'dispatcher_nodes')"))
                .isEqualTo(3);

        Cli.Run again = Cli.run(url, "migrate");
        assertThat(again.out()).isEqualTo("database " + name + ": applied 0 migration(s); schema version " + LATEST + "\n");
        Cli.Run valid = Cli.run(url, "migrate", "validate");
        assertThat(valid.code()).isZero();
        assertThat(valid.out()).isEqualTo("database " + name + ": schema version " + LATEST + ", valid\n");
        Cli.Run info = Cli.run(url, "migrate", "info");
        assertThat(info.out().lines().filter(l -> l.contains("Success")).count()).isEqualTo(COUNT);
    }

    @Test
    void migrateCreatesAMissingDatabase() throws Exception {
        DatabaseUrl url = PgServer.get().admin().withDatabase(name);
        Cli.Run dry = Cli.run(url, "migrate", "--dry-run");
        assertThat(dry.code()).as(dry.err()).isZero();
        assertThat(dry.out()).isEqualTo("database " + name + " does not exist: migrate would create it and apply every"
                + " migration; nothing changed\n");
        assertThat(Database.exists(url)).isFalse();

        Cli.Run r = Cli.run(url, "migrate");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("created database " + name + "\n");
        assertThat(count(url, "SELECT count(*) FROM pgdispatch_schema_history WHERE success")).isEqualTo(COUNT);
    }

    @Test
    void dryRunListsThePendingMigrationsAndChangesNothing() throws Exception {
        DatabaseUrl url = PgServer.get().createEmpty(name);

        Cli.Run r = Cli.run(url, "migrate", "--dry-run");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("database " + name + ": " + COUNT + " pending migration(s)\n  V1 tasks\n  V2 add task lease columns\n");
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).isZero();
    }

    @Test
    void baselineVersion1AdoptsALegacyTableKeepingItsRows() throws Exception {
        DatabaseUrl url = PgServer.get().createEmpty(name);
        exec(url, Files.readString(Path.of("db/migrations/V1__tasks.sql")));
        exec(url, "INSERT INTO tasks (kind, payload, status) VALUES ('legacy.mail', '{\"to\": \"a@b\"}', 'pending'),"
                + " ('legacy.mail', '{}', 'succeeded'), ('legacy.report', '{}', 'running')");

        Cli.Run dry = Cli.run(url, "migrate", "--baseline-version", "1", "--dry-run");
        assertThat(dry.out()).startsWith("database " + name + ": ").contains("after baselining at version 1").doesNotContain("  V1 ")
                .contains("  V2 add task lease columns");
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'pgdispatch_schema_history'")).isZero();

        Cli.Run r = Cli.run(url, "migrate", "--baseline-version", "1");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo("database " + name + ": adopted the existing tasks table as migration 1\n"
                + "database " + name + ": applied " + (COUNT - 1) + " migration(s); schema version " + LATEST + "\n");
        assertThat(count(url, "SELECT count(*) FROM tasks")).isEqualTo(3);
        assertThat(count(url, "SELECT count(*) FROM tasks WHERE kind = 'legacy.mail' AND payload->>'to' = 'a@b'")).isEqualTo(1);
        assertThat(count(url, "SELECT count(*) FROM tasks WHERE lease_token = 0 AND requeue_count = 0")).isEqualTo(3);
        assertThat(count(url, "SELECT count(*) FROM pgdispatch_schema_history WHERE version = '1' AND type = 'BASELINE'")).isEqualTo(1);
    }

    @Test
    void migrateIntoItsOwnSchemaThenEveryCommandWorksThere() throws Exception {
        DatabaseUrl url = PgServer.get().createEmpty(name);
        exec(url, "CREATE TABLE public.invoices (id int PRIMARY KEY)");
        var env = java.util.Map.of("PGDISPATCH_SCHEMA", "jobs");

        Cli.Run r = Cli.run(env, url, "migrate");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo("database " + name + " schema jobs: applied " + COUNT + " migration(s); schema version "
                + LATEST + "\n");
        Cli.Run enq = Cli.run(env, url, "enqueue", "--kind", "noop");
        assertThat(enq.code()).as(enq.err()).isZero();

        assertThat(count(url, "SELECT count(*) FROM jobs.tasks")).isOne();
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).isOne();
        assertThat(Cli.run(env, url, "migrate", "validate").out()).isEqualTo("database " + name + " schema jobs: schema version "
                + LATEST + ", valid\n");
    }

    @Test
    void migrateRefusesALegacyTasksTableWithoutHistoryNamingTheAdoption() throws Exception {
        DatabaseUrl url = PgServer.get().createEmpty(name);
        exec(url, Files.readString(Path.of("db/migrations/V1__tasks.sql")));

        Cli.Run r = Cli.run(url, "migrate");

        assertThat(r.code()).isEqualTo(Main.FAILURE);
        assertThat(r.err()).contains("schema public already has a tasks table but no pgdispatch migration history; nothing was"
                + " changed. If it is a pgdispatch installation from before leases, adopt it with"
                + " `pgdispatch migrate --baseline-version 1`");
        assertThat(count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'pgdispatch_schema_history'")).isZero();
    }

    @Test
    void aBadBaselineVersionIsAUsageError() {
        DatabaseUrl url = PgServer.get().admin().withDatabase(name);
        ReapCommandTest.assertUsage(Cli.run(url, "migrate", "--baseline-version", "one"),
                "pgdispatch: --baseline-version=one must be a migration number such as 1");
    }

    @Test
    void commandsOnAnUnmigratedDatabaseFailNamingTheFix() {
        DatabaseUrl url = PgServer.get().createEmpty(name);
        Cli.Run r = Cli.run(url, "status");
        assertThat(r.code()).isEqualTo(Main.FAILURE);
        assertThat(r.errLines()).containsExactly("pgdispatch: database " + name
                + " is at schema version none but this pgdispatch needs " + LATEST + ": run `pgdispatch migrate` first");
    }
}

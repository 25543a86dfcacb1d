package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Map;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.ops.Env;
import pgdispatch.ops.Main;
import pgdispatch.store.Database;
import pgdispatch.testing.TestDatabase;

/**
 * A node refuses to run against a schema older or newer than its own, naming both versions, and
 * touches nothing: no node registered, no task changed, no migration applied.
 */
class SchemaVersionRefusalTest {
    private static final String LATEST = TestDatabase.latestVersion();
    /** A version newer than every migration file. */
    private static final int FUTURE = TestDatabase.latestMigration() + 1;

    @RegisterExtension
    static final TestDatabase older = TestDatabase.empty();

    @RegisterExtension
    static final TestDatabase newer = new TestDatabase();

    @BeforeAll
    static void schemas() {
        Flyway upToV4 = Flyway.configure().configuration(Database.flyway(older.database().dataSource(), null).getConfiguration())
                .target("4").load();
        upToV4.migrate();
        older.exec("INSERT INTO tasks (queue, kind, payload) VALUES ('default', 'noop', '{\"old\":true}')");

        newer.exec("INSERT INTO tasks (queue, kind, payload) VALUES ('default', 'noop', '{\"new\":true}')");
        newer.exec("""
                INSERT INTO pgdispatch_schema_history (installed_rank, version, description, type, script, checksum,
                                                   installed_by, execution_time, success)
                SELECT max(installed_rank) + 1, '%1$d', 'from a newer pgdispatch', 'SQL', 'V%1$d__from_a_newer_pgdispatch.sql', 0,
                       current_user, 1, true FROM pgdispatch_schema_history""".formatted(FUTURE));
    }

    @AfterEach
    void restoreEnv() {
        Env.override(null);
    }

    private static String state(TestDatabase db) {
        return db.rows("SELECT * FROM tasks ORDER BY id").toString()
                + db.rows("SELECT version, success FROM pgdispatch_schema_history ORDER BY installed_rank");
    }

    @Test
    void olderSchemaIsRefusedNamingBothVersions() {
        String before = state(older);
        Dispatcher d = Dispatcher.builder(older.config()).build();

        assertThatThrownBy(d::start).isInstanceOf(Database.SchemaMismatchException.class)
                .hasMessage("database " + older.url().database() + " is at schema version 4 but this pgdispatch needs " + LATEST + ": "
                        + "run `pgdispatch migrate` first");

        assertThat(state(older)).isEqualTo(before);
        assertThat(older.count("information_schema.tables WHERE table_name = 'dispatcher_nodes'")).as("V5 not applied").isZero();
    }

    @Test
    void newerSchemaIsRefusedNamingBothVersions() {
        String before = state(newer);
        Dispatcher d = Dispatcher.builder(newer.config()).build();

        assertThatThrownBy(d::start).isInstanceOf(Database.SchemaMismatchException.class)
                .hasMessage("database " + newer.url().database() + " is at schema version " + FUTURE
                        + ", newer than this pgdispatch knows (" + LATEST + "): "
                        + "upgrade pgdispatch");

        assertThat(state(newer)).isEqualTo(before);
        assertThat(newer.count("dispatcher_nodes")).as("no node registered").isZero();
    }

    @Test
    void runCommandPrintsTheRefusal() {
        DatabaseUrl u = newer.url();
        Env.override(Map.of("DATABASE_URL", "jdbc:postgresql://" + u.host() + ":" + u.port() + "/" + u.database() + "?user=" + u.user(),
                "PGDISPATCH_HTTP_PORT", "off"));
        StringWriter err = new StringWriter();
        assertThat(Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(err), "run")).isEqualTo(Main.FAILURE);
        assertThat(err.toString()).isEqualTo("pgdispatch: database " + u.database()
                + " is at schema version " + FUTURE + ", newer than this pgdispatch knows (" + LATEST + "): upgrade pgdispatch"
                + System.lineSeparator());
    }
}

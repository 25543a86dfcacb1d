package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * The runtime role of scripts/create-roles.sql is enough to run a node: the script is applied with psql
 * (as an operator would) to a migrated database, then a node running as {@code pgdispatch_app} claims
 * and completes a task, and the role cannot change the schema.
 */
class RuntimeRoleTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    /** Roles are cluster-wide; the script leaves an existing role's password alone unless given one. */
    private static final String APP_PASSWORD = "pgd-test-app-pw";

    private static DatabaseUrl app;

    @BeforeAll
    static void createRoles() throws Exception {
        Path script = Path.of(System.getProperty("pgdispatch.createRolesSql", "scripts/create-roles.sql"));
        Assumptions.assumeTrue(Files.exists(script), script + " is not in this checkout (it is committed with the scripts)");
        Assumptions.assumeTrue(onPath("psql"), "psql is not on PATH: the script is psql syntax (\\if, :'var')");
        DatabaseUrl url = db.url();
        List<String> cmd = new ArrayList<>(List.of("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host(),
                "-p", "" + url.port(), "-d", url.database(), "-v", "app_password=" + APP_PASSWORD, "-f", script.toString()));
        if (url.user() != null) cmd.addAll(List.of("-U", url.user()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        if (url.password() != null) pb.environment().put("PGPASSWORD", url.password());
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(output).isZero();
        app = new DatabaseUrl(url.host(), url.port(), url.database(), "pgdispatch_app", APP_PASSWORD, url.params());
    }

    private static boolean onPath(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, program))) return true;
        }
        return false;
    }

    @Test
    void aNodeRunningAsTheRuntimeRoleClaimsAndCompletesATask() throws Exception {
        try (Database asApp = Database.open(app, 3, "pgd-test-app")) {
            TaskClient client = new TaskClient(new TaskStore(asApp), 1 << 20);
            long id = client.enqueue(TaskClient.Enqueue.of("echo", "{\"x\": 1}"));
            // the dependency triggers (V12_2) run as the runtime role: task_dependencies is granted to it
            long after = client.enqueue(TaskClient.Enqueue.of("echo", "{\"x\": 2}").dependsOn(id));
            Dispatcher d = Dispatcher.builder(db.config().withDatabaseUrl(app)).build().start();
            try {
                await().atMost(Duration.ofSeconds(20)).until(() -> db.count("tasks WHERE id IN (" + id + ", " + after
                        + ") AND status = 'succeeded'") == 2);
                assertThat(d.reapNow().skipped()).isFalse();
            } finally {
                d.stop();
            }
            assertThat(db.rows("SELECT event, owner_id FROM task_events WHERE task_id = " + id + " ORDER BY id"))
                    .extracting(r -> r.get("event") + "@" + r.get("owner_id")).containsExactly("claimed@node-a", "succeeded@node-a");
            assertThat(db.count("dispatcher_nodes WHERE node_id = 'node-a' AND stopped_at IS NOT NULL")).isEqualTo(1);
        }
    }

    @Test
    void theRuntimeRoleAppendsToTheAuditTrailButCannotRewriteOrEraseIt() throws Exception { // issue 13
        long old;
        long recent;
        try (Database asApp = Database.open(app, 3, "pgd-test-app")) {
            TaskStore store = new TaskStore(asApp);
            old = store.enqueue(new pgdispatch.store.NewTask("default", "noop", "{}", 0, null, 5, null));
            recent = store.enqueue(new pgdispatch.store.NewTask("default", "noop", "{}", 0, null, 5, null));
            var claimed = store.claimDue(new pgdispatch.store.ClaimRequest("node-a", List.of("default"),
                    java.util.Map.of("noop", Duration.ofMinutes(5)), 10, 3));
            store.completeIfOwned("node-a", claimed.stream()
                    .map(t -> (pgdispatch.store.Outcome) new pgdispatch.store.Outcome.Success(t.id(), t.leaseToken(), null)).toList());
        }
        String mine = "SELECT * FROM task_events WHERE task_id IN (" + old + ", " + recent + ") ORDER BY id";
        List<java.util.Map<String, Object>> trail = db.rows(mine);
        assertThat(trail).hasSize(4);

        try (Connection c = Database.connect(app); Statement st = c.createStatement()) {
            // the stored rows (V13): no privilege to rewrite or erase them
            for (String rewrite : new String[] {
                    "UPDATE task_event_log SET event = 'failed' WHERE event = 'succeeded'",
                    "UPDATE task_event_log SET owner_id = 'someone-else'",
                    "DELETE FROM task_event_log WHERE task_id = " + recent,
                    "TRUNCATE task_event_log"}) {
                assertThatThrownBy(() -> st.execute(rewrite)).as(rewrite).isInstanceOf(SQLException.class)
                        .extracting(e -> ((SQLException) e).getSQLState()).isEqualTo("42501");
            }
            // the view of the whole trail takes no UPDATE or DELETE at all (55000: cannot update view)
            for (String rewrite : new String[] {
                    "UPDATE task_events SET event = 'failed' WHERE event = 'succeeded'",
                    "DELETE FROM task_events WHERE task_id = " + recent}) {
                assertThatThrownBy(() -> st.execute(rewrite)).as(rewrite).isInstanceOf(SQLException.class)
                        .extracting(e -> ((SQLException) e).getSQLState()).isIn("42501", "55000");
            }
        }
        assertThat(db.rows(mine)).isEqualTo(trail);

        // the pruner, as the same role, still removes old finished tasks with their events, and only those
        db.exec("UPDATE tasks SET finished_at = now() - interval '30 days' WHERE id = " + old);
        try (Database asApp = Database.open(app, 3, "pgd-test-app")) {
            assertThat(new TaskStore(asApp).pruneFinished(Duration.ofDays(7), 100)).isEqualTo(1);
        }
        assertThat(db.count("task_events WHERE task_id = " + old)).isZero();
        assertThat(db.count("task_events WHERE task_id = " + recent)).isEqualTo(2);
        assertThat(db.count("tasks WHERE id = " + recent)).isEqualTo(1);
    }

    @Test
    void theRuntimeRoleCannotChangeTheSchemaOrTheMigrationHistory() throws Exception {
        try (Connection c = Database.connect(app); Statement st = c.createStatement()) {
            assertThatThrownBy(() -> st.execute("CREATE TABLE intruder (id int)")).isInstanceOf(SQLException.class)
                    .extracting(e -> ((SQLException) e).getSQLState()).isEqualTo("42501");
            assertThatThrownBy(() -> st.execute("ALTER TABLE tasks ADD COLUMN intruder int")).isInstanceOf(SQLException.class)
                    .extracting(e -> ((SQLException) e).getSQLState()).isEqualTo("42501");
            assertThatThrownBy(() -> st.execute("DELETE FROM pgdispatch_schema_history")).isInstanceOf(SQLException.class)
                    .extracting(e -> ((SQLException) e).getSQLState()).isEqualTo("42501");
        }
    }
}

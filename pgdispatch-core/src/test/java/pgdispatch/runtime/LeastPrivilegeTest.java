package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.PgServer;
import pgdispatch.testing.TestDatabase;

/**
 * The runtime needs no more than DML on tasks and dispatcher_nodes, SELECT and INSERT on task_events,
 * SELECT, INSERT and DELETE on task_dependencies,
 * the prune function, read access to Flyway's history and the
 * identity sequences: a role with exactly that (no DDL, no ownership, not a superuser) runs a node,
 * enqueues, reaps and completes tasks; the same role cannot change the schema.
 */
class LeastPrivilegeTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final String ROLE = "pgd_t_app_" + UUID.randomUUID().toString().substring(0, 8);
    private static final String PASSWORD = "pw-" + UUID.randomUUID();
    private static DatabaseUrl asApp;

    @BeforeAll
    static void role() {
        PgServer.get().exec("CREATE ROLE " + ROLE + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '" + PASSWORD + "'");
        db.exec("GRANT CONNECT ON DATABASE " + db.url().database() + " TO " + ROLE);
        db.exec("GRANT USAGE ON SCHEMA public TO " + ROLE);
        db.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON tasks, dispatcher_nodes, dispatcher_queues, concurrency_limits, schedules, schedule_fires TO " + ROLE);
        db.exec("GRANT SELECT, INSERT ON task_events, task_event_log TO " + ROLE); // the audit trail is append-only (issue 13)
        db.exec("GRANT SELECT, INSERT, DELETE ON task_dependencies TO " + ROLE); // V12_2's triggers run as the caller
        db.exec("GRANT EXECUTE ON FUNCTION pgdispatch_prune_finished(interval, integer) TO " + ROLE);
        db.exec("GRANT SELECT ON pgdispatch_schema_history TO " + ROLE);
        db.exec("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + ROLE);
        DatabaseUrl u = db.url();
        asApp = new DatabaseUrl(u.host(), u.port(), u.database(), ROLE, PASSWORD, u.params());
    }

    @AfterAll
    static void dropRole() {
        db.exec("DROP OWNED BY " + ROLE); // its grants in this database
        PgServer.get().exec("DROP ROLE IF EXISTS " + ROLE);
    }

    @Test
    void nodeRunsTasksUnderARoleWithoutDdlRights() {
        DispatcherConfig cfg = db.config().withDatabaseUrl(asApp).withHttpPort(DispatcherConfig.HTTP_OFF);
        try (Database appDb = Database.open(asApp, 3, "pgd-test-app");
             Dispatcher d = Dispatcher.builder(cfg).build().start()) {
            TaskClient client = new TaskClient(new TaskStore(appDb), cfg.maxPayloadBytes());
            long ok = client.enqueue(TaskClient.Enqueue.of("echo", "{\"as\":\"app\"}"));
            long retried = client.enqueue(TaskClient.Enqueue.of("fail", "{\"times\":1}").maxAttempts(2));
            long after = client.enqueue(TaskClient.Enqueue.of("echo", "{}").dependsOn(ok, retried));
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    db.count("tasks WHERE id IN (" + ok + ", " + retried + ", " + after + ") AND status = 'succeeded'") == 3);
            assertThat(d.reapNow().skipped()).isFalse(); // the reaper's advisory lock and UPDATE work too
            assertThat(db.count("dispatcher_nodes WHERE node_id = 'node-a'")).isOne();

            for (String ddl : new String[] {"DROP TABLE tasks", "CREATE TABLE x (i int)", "ALTER TABLE tasks DROP CONSTRAINT tasks_queue_name_check",
                    "TRUNCATE task_event_log"}) {
                assertThatThrownBy(() -> {
                    try (Connection c = appDb.dataSource().getConnection(); Statement st = c.createStatement()) {
                        st.execute(ddl);
                    }
                }).as(ddl).hasMessageMatching("(?s).*(permission denied|must be owner).*").hasMessageNotContaining(PASSWORD);
            }
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}

package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import pgdispatch.store.Database.SchemaMismatchException;
import pgdispatch.testing.TestDatabase;

/** The real migrations on empty databases: what each one leaves behind, and the schema version guard. */
class MigrationsTest {
    /** Migrated by {@link #migratesAnEmptyDatabaseToTheLatestVersion} itself. */
    @RegisterExtension
    static final TestDatabase fresh = TestDatabase.empty();
    /** Migrated once before all tests; the schema assertions read it. */
    @RegisterExtension
    static final TestDatabase schema = TestDatabase.empty();
    @RegisterExtension
    static final TestDatabase onlyToV3 = TestDatabase.empty();
    @RegisterExtension
    static final TestDatabase withFutureMigration = TestDatabase.empty();

    /** The newest version among the files in db/migrations, as Flyway spells it. */
    static String latestFileVersion() {
        return TestDatabase.latestVersion();
    }

    @BeforeAll
    static void migrateSchemaDatabase() {
        Database.flyway(schema.database().dataSource(), null).migrate();
    }

    @Test
    void migratesAnEmptyDatabaseToTheLatestVersion() throws IOException {
        Flyway flyway = Database.flyway(fresh.database().dataSource(), null);
        assertThat(flyway.info().current()).isNull();
        assertThat(fresh.count("information_schema.tables WHERE table_schema = 'public'")).isZero();

        MigrateResult result = flyway.migrate();

        String latest = latestFileVersion();
        assertThat(result.success).isTrue();
        assertThat(result.migrationsExecuted).isEqualTo(TestDatabase.migrationCount());
        assertThat(result.targetSchemaVersion).isEqualTo(latest);
        assertThat(flyway.info().current().getVersion().getVersion()).isEqualTo(latest);
        assertThat(flyway.info().pending()).isEmpty();
        assertThat(Database.expectedSchemaVersion(fresh.database().dataSource())).isEqualTo(latest);
        assertThat(fresh.database().requireCurrentSchema()).isEqualTo(latest);
    }

    @Test
    void secondMigrateOfACurrentDatabaseDoesNothing() {
        MigrateResult again = Database.flyway(schema.database().dataSource(), null).migrate();

        assertThat(again.migrationsExecuted).isZero();
        assertThat(Database.flyway(schema.database().dataSource(), null).info().pending()).isEmpty();
    }

    @Test
    void v1CreatesTheTasksTableWithTheLegacyColumns() {
        assertThat(columnNames("tasks")).startsWith("id", "queue", "kind", "payload", "priority", "status", "attempts",
                "max_attempts", "run_at", "last_error", "result", "created_at", "updated_at", "started_at",
                "finished_at");
    }

    @Test
    void v2AddsTheLeaseColumnsAndLeavesRoomForHotUpdates() {
        assertThat(columns("tasks", "owner_id", "lease_expires_at", "last_heartbeat_at", "lease_token", "requeue_count"))
                .containsExactly(
                        tuple("owner_id", "text", "YES", null),
                        tuple("lease_expires_at", "timestamp with time zone", "YES", null),
                        tuple("last_heartbeat_at", "timestamp with time zone", "YES", null),
                        tuple("lease_token", "bigint", "NO", "0"),
                        tuple("requeue_count", "integer", "NO", "0"));
        assertThat(schema.rows("SELECT array_to_string(reloptions, ',') AS o FROM pg_class WHERE oid = 'tasks'::regclass")
                .get(0).get("o")).isEqualTo("fillfactor=80");
    }

    @Test
    void v3AddsIdempotencyKeyAndProgress() {
        assertThat(columns("tasks", "idempotency_key", "progress")).containsExactly(
                tuple("idempotency_key", "text", "YES", null),
                tuple("progress", "jsonb", "YES", null));
    }

    @Test
    void v3AndV8AddTheProducerGuardsWithoutValidatingLegacyRows() {
        assertThat(schema.rows("""
                SELECT conname, convalidated FROM pg_constraint
                 WHERE conrelid = 'tasks'::regclass AND contype = 'c' ORDER BY conname"""))
                .extracting(r -> r.get("conname"), r -> r.get("convalidated"))
                .containsExactly(
                        tuple("tasks_claim_event_id_check", false), // V13
                        tuple("tasks_counter_headroom_check", false),
                        tuple("tasks_counts_check", false),
                        tuple("tasks_depends_on_check", false), // V12_2
                        tuple("tasks_done_event_id_check", false), // V13
                        tuple("tasks_kind_name_check", false),
                        tuple("tasks_max_attempts_check", false),
                        tuple("tasks_on_dependency_failure_check", false), // V12_2
                        tuple("tasks_payload_object_check", false),
                        tuple("tasks_priority_range_check", false),
                        tuple("tasks_queue_name_check", false),
                        tuple("tasks_run_at_finite_check", false), // V9
                        tuple("tasks_status_check", false), // V10_5 added compensating, compensated: NOT VALID
                        tuple("tasks_unique_key_check", false),
                        tuple("tasks_waiting_check", false)); // V12_2
    }

    @ParameterizedTest(name = "{0} rejects {1} = {2}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', textBlock = """
            tasks_queue_name_check     | queue         | 'bad queue'
            tasks_kind_name_check      | kind          | '-starts-with-dash'
            tasks_payload_object_check | payload       | '[1, 2]'
            tasks_priority_range_check | priority      | 1001
            tasks_max_attempts_check   | max_attempts  | 0
            tasks_counts_check         | requeue_count | -1
            tasks_counter_headroom_check | attempts    | 2147483647
            tasks_counter_headroom_check | lease_token | 9223372036854775807
            tasks_status_check         | status        | 'done'
            """)
    void eachCheckConstraintRejectsABadRow(String constraint, String column, String value) {
        Map<String, String> values = new java.util.LinkedHashMap<>(Map.of("kind", "'work'"));
        values.put(column, value);
        String insert = "INSERT INTO tasks (" + String.join(", ", values.keySet()) + ") VALUES ("
                + String.join(", ", values.values()) + ")";

        assertThatThrownBy(() -> schema.exec(insert))
                .hasMessageContaining("violates check constraint \"" + constraint + "\"");
    }

    @Test
    void v4ReplacesTheLegacyIndexWithPartialIndexesThatAreValid() {
        assertThat(schema.rows("""
                SELECT c.relname AS name, i.indisunique AS uniq, i.indisvalid AS valid,
                       pg_get_expr(i.indpred, i.indrelid) AS predicate,
                       (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS cols
                  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = 'tasks'::regclass ORDER BY c.relname"""))
                .extracting(r -> r.get("name"), r -> r.get("cols"), r -> r.get("predicate"), r -> r.get("uniq"),
                        r -> r.get("valid"))
                .containsExactly(
                        tuple("tasks_claim_idx", "queue,priority,run_at,id", "(status = 'pending'::text)", false, true),
                        tuple("tasks_compensating_idx", "queue,priority,run_at,id", "(status = 'compensating'::text)", false, true),
                        tuple("tasks_finished_idx", "finished_at",
                                "(status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text, 'compensated'::text]))",
                                false, true),
                        tuple("tasks_idempotency_key_idx", "idempotency_key", "(idempotency_key IS NOT NULL)", true, true),
                        tuple("tasks_pkey", "id", null, true, true),
                        tuple("tasks_running_owner_idx", "owner_id", "(status = 'running'::text)", false, true),
                        tuple("tasks_unique_key_idx", "unique_key", "((unique_key IS NOT NULL) AND (status = ANY (unique_states)))",
                                true, true));
    }

    @Test
    void noIndexCoversAColumnThatALeaseRenewalWrites() {
        List<Map<String, Object>> indexed = schema.rows("""
                SELECT c.relname AS index, a.attname AS col
                  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                 WHERE i.indrelid = 'tasks'::regclass""");
        List<Map<String, Object>> exprs = schema.rows("""
                SELECT coalesce(pg_get_expr(i.indexprs, i.indrelid), '') || ' ' || coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS e
                  FROM pg_index i WHERE i.indrelid = 'tasks'::regclass""");

        assertThat(indexed).extracting(r -> r.get("col")).contains("queue", "owner_id")
                .doesNotContain("lease_expires_at", "last_heartbeat_at", "progress", "updated_at");
        assertThat(exprs).extracting(r -> (String) r.get("e")).allSatisfy(e -> assertThat(e)
                .doesNotContain("lease_expires_at", "last_heartbeat_at", "progress", "updated_at"));
    }

    @Test
    void aRenewalShapedUpdateIsAHeapOnlyTupleUpdate() throws SQLException {
        try (Connection c = schema.database().dataSource().getConnection(); Statement st = c.createStatement()) {
            st.execute("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts, lease_expires_at)"
                    + " VALUES ('work', 'running', 'node-a', 1, 1, now())");
            c.setAutoCommit(false);
            try {
                st.executeUpdate("UPDATE tasks SET lease_expires_at = now() + interval '10 minutes',"
                        + " last_heartbeat_at = now(), progress = '{\"step\": 2}', updated_at = now() WHERE owner_id = 'node-a'");
                var rs = st.executeQuery("SELECT pg_stat_get_xact_tuples_updated('tasks'::regclass),"
                        + " pg_stat_get_xact_tuples_hot_updated('tasks'::regclass)");
                rs.next();
                assertThat(rs.getLong(1)).isEqualTo(1);
                assertThat(rs.getLong(2)).as("HOT updates").isEqualTo(1);
            } finally {
                c.rollback();
                c.setAutoCommit(true);
                st.execute("DELETE FROM tasks WHERE owner_id = 'node-a'");
            }
        }
    }

    @Test
    void v5CreatesNodesAndEventsWithTheirIndexes() {
        assertThat(columnNames("dispatcher_nodes")).containsExactly("node_id", "incarnation", "host", "pid", "version",
                "queues", "kinds", "started_at", "last_seen_at", "stopped_at", "health", "health_at"); // + V8_5
        // the table is task_event_log since V13, and task_events the view of the whole trail, same columns
        for (String trail : new String[] {"task_events", "task_event_log"}) {
            assertThat(columnNames(trail)).as(trail).containsExactly("id", "task_id", "event", "owner_id", "lease_token", "at",
                    "detail");
        }
        assertThat(schema.rows("SELECT indexname FROM pg_indexes WHERE tablename = 'task_event_log' ORDER BY indexname"))
                .extracting(r -> r.get("indexname"))
                .containsExactly("task_event_log_at_idx", "task_event_log_pkey", "task_event_log_task_idx");
        // an insert through the view (a node of an earlier version) reaches the log and its check
        assertThatThrownBy(() -> schema.exec("INSERT INTO task_events (task_id, event) VALUES (1, 'exploded')"))
                .hasMessageContaining("task_event_log_event_check");
    }

    @Test
    void v6CreatesTheCleanupFunctionAndTheInsertTrigger() {
        assertThat(schema.rows("""
                SELECT pg_get_function_identity_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result
                  FROM pg_proc p WHERE p.proname = 'pgdispatch_reap_stale'"""))
                .extracting(r -> r.get("args"), r -> r.get("result"))
                .containsExactly(tuple("p_grace interval, p_max_requeue integer, p_batch integer, p_dry_run boolean",
                        "TABLE(task_id bigint, previous_owner text, action text, reason text)"));
        assertThat(schema.rows("""
                SELECT t.tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                 WHERE t.tgrelid = 'tasks'::regclass AND NOT t.tgisinternal"""))
                .extracting(r -> r.get("tgname"), r -> r.get("proname"))
                .containsExactlyInAnyOrder(tuple("tasks_notify_inserted", "pgdispatch_notify_inserted"),
                        tuple("tasks_compensation", "pgdispatch_compensation"), // V10_5
                        tuple("tasks_dependencies_before_insert", "pgdispatch_dependencies_before_insert"), // V12_2
                        tuple("tasks_dependencies_after_insert", "pgdispatch_dependencies_after_insert"),
                        tuple("tasks_dependencies_immutable", "pgdispatch_dependencies_immutable"),
                        tuple("tasks_release_dependents", "pgdispatch_release_dependents"),
                        tuple("tasks_trail", "pgdispatch_trail")); // V13
    }

    @Test
    void insertOfDueTasksNotifiesOncePerStatementAndQueueButNotForFutureTasks() throws SQLException {
        try (Connection listener = Database.connect(schema.url()); Statement ls = listener.createStatement();
             Connection producer = Database.connect(schema.url()); Statement ps = producer.createStatement()) {
            ls.execute("LISTEN pgdispatch_wakeup");
            ps.execute("INSERT INTO tasks (queue, kind, run_at) VALUES ('later', 'work', now() + interval '1 hour')");
            ps.execute("INSERT INTO tasks (queue, kind) VALUES ('q1', 'work'), ('q1', 'work'), ('q2', 'work')");
            ps.execute("INSERT INTO tasks (queue, kind) VALUES ('marker', 'work')");

            List<String> payloads = new java.util.ArrayList<>();
            while (!payloads.contains("marker")) {
                PGNotification[] got = listener.unwrap(PGConnection.class).getNotifications(10_000);
                assertThat(got).as("notifications within 10 s").isNotNull().isNotEmpty();
                for (PGNotification n : got) payloads.add(n.getParameter());
            }
            assertThat(payloads).containsExactlyInAnyOrder("q1", "q2", "marker");
            ps.execute("DELETE FROM tasks WHERE queue IN ('later', 'q1', 'q2', 'marker')");
        }
    }

    /**
     * V13_5: changes of schedules that can bring a fire time closer, and every change of the limits, send
     * ':schedules' / ':limits' on pgdispatch_wakeup (one per transaction); the Scheduler's own steps (next
     * fire time placed or moved later) and a disable send nothing.
     */
    @Test
    void scheduleAndLimitChangesNotifyButTheSchedulersOwnStepsDoNot() throws SQLException {
        try (Connection listener = Database.connect(schema.url()); Statement ls = listener.createStatement();
             Connection producer = Database.connect(schema.url()); Statement ps = producer.createStatement()) {
            ls.execute("LISTEN pgdispatch_wakeup");
            List<String> expected = List.of(
                    "INSERT INTO schedules (name, every_s, kind) VALUES ('n1', 60, 'k'), ('n2', 60, 'k')", ":schedules",
                    "UPDATE schedules SET next_fire_at = now() + interval '1 minute'", "",           // placed
                    "UPDATE schedules SET next_fire_at = next_fire_at + interval '1 minute'", "",   // a fire step
                    "UPDATE schedules SET next_fire_at = next_fire_at - interval '30 seconds' WHERE name = 'n1'", ":schedules",
                    "UPDATE schedules SET enabled = false WHERE name = 'n2'", "",
                    "UPDATE schedules SET enabled = true WHERE name = 'n2'", ":schedules",
                    "UPDATE schedules SET payload = '{\"a\": 1}'", "",
                    "UPDATE schedules SET next_fire_at = NULL WHERE name = 'n2'", ":schedules",
                    "INSERT INTO schedules (name, every_s, kind, enabled) VALUES ('off', 60, 'k', false)", "",
                    "DELETE FROM schedules", "",
                    "INSERT INTO concurrency_limits (scope, name, max_running) VALUES ('kind', 'k', 1), ('queue', 'q', 2)", ":limits",
                    "UPDATE concurrency_limits SET max_running = 3", ":limits",
                    "DELETE FROM concurrency_limits WHERE scope = 'queue'", ":limits",
                    "TRUNCATE concurrency_limits", ":limits");
            PGConnection pg = listener.unwrap(PGConnection.class);
            for (int i = 0; i < expected.size(); i += 2) {
                ps.execute(expected.get(i));
                ps.execute("NOTIFY pgdispatch_wakeup, 'marker'"); // after the statement's own, if any
                List<String> payloads = new java.util.ArrayList<>();
                while (!payloads.contains("marker")) {
                    PGNotification[] got = pg.getNotifications(10_000);
                    assertThat(got).as("notifications within 10 s").isNotNull().isNotEmpty();
                    for (PGNotification n : got) payloads.add(n.getParameter());
                }
                payloads.remove("marker");
                assertThat(payloads).as(expected.get(i)).isEqualTo(expected.get(i + 1).isEmpty() ? List.of() : List.of(expected.get(i + 1)));
            }
        }
    }

    @Test
    void requireCurrentSchemaNamesBothVersionsWhenMigrationsArePending() throws IOException {
        Flyway flyway = Database.flyway(onlyToV3.database().dataSource(), null);
        Flyway.configure().configuration(flyway.getConfiguration()).target("3").load().migrate();
        assertThat(flyway.info().current().getVersion().getVersion()).isEqualTo("3");

        assertThatThrownBy(() -> onlyToV3.database().requireCurrentSchema())
                .isInstanceOf(SchemaMismatchException.class)
                .hasMessage("database " + onlyToV3.url().database() + " is at schema version 3 but this pgdispatch needs "
                        + latestFileVersion() + ": run `pgdispatch migrate` first");
    }

    @Test
    void requireCurrentSchemaNamesBothVersionsWhenTheDatabaseIsNewer() throws IOException {
        Database.flyway(withFutureMigration.database().dataSource(), null).migrate();
        int future = TestDatabase.latestMigration() + 1;
        withFutureMigration.exec("""
                INSERT INTO pgdispatch_schema_history (installed_rank, version, description, type, script, checksum,
                                                   installed_by, execution_time, success)
                SELECT max(installed_rank) + 1, '%d', 'from a newer pgdispatch', 'SQL', 'V%d__from_a_newer_pgdispatch.sql',
                       12345, 'postgres', 1, true
                  FROM pgdispatch_schema_history""".formatted(future, future));

        assertThatThrownBy(() -> withFutureMigration.database().requireCurrentSchema())
                .isInstanceOf(SchemaMismatchException.class)
                .hasMessage("database " + withFutureMigration.url().database() + " is at schema version " + future
                        + ", newer than this pgdispatch knows (" + latestFileVersion() + "): upgrade pgdispatch");
        assertThat(Database.expectedSchemaVersion(withFutureMigration.database().dataSource()))
                .isEqualTo(latestFileVersion());
    }

    private List<String> columnNames(String table) {
        return schema.rows("SELECT column_name FROM information_schema.columns WHERE table_name = '" + table
                + "' ORDER BY ordinal_position").stream().map(r -> (String) r.get("column_name")).toList();
    }

    private List<org.assertj.core.groups.Tuple> columns(String table, String... names) {
        String in = String.join("','", names);
        List<Map<String, Object>> rows = schema.rows("SELECT column_name, data_type, is_nullable, column_default"
                + " FROM information_schema.columns WHERE table_name = '" + table + "' AND column_name IN ('" + in
                + "') ORDER BY ordinal_position");
        return rows.stream().map(r -> tuple(r.get("column_name"), r.get("data_type"), r.get("is_nullable"),
                r.get("column_default"))).toList();
    }
}

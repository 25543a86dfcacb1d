package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * Adoption of an installation from before the lease columns: its tasks table is exactly V1, full of rows
 * (running ones too), and {@code migrate --baseline-version 1} must bring it to the latest schema without
 * changing a single stored value.
 */
class AdoptionTest {
    @RegisterExtension
    static final TestDatabase db = TestDatabase.empty();

    static final String V1_COLUMNS = "id, queue, kind, payload, priority, status, attempts, max_attempts, run_at,"
            + " last_error, result, created_at, updated_at, started_at, finished_at";

    /** Rows g % 6 = 1 are running; of those, g % 12 = 1 were last touched two hours ago, g % 12 = 7 a minute ago. */
    static final String LEGACY_ROWS = """
            INSERT INTO tasks (queue, kind, payload, priority, status, attempts, max_attempts, run_at, last_error,
                               result, created_at, updated_at, started_at, finished_at)
            SELECT 'q' || g % 3, 'kind.' || g % 4, jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g)),
                   g % 7 - 3,
                   (ARRAY['pending', 'running', 'succeeded', 'failed', 'cancelled', 'quarantined'])[1 + g % 6],
                   g % 4, 5, now() - g * interval '1 minute',
                   CASE WHEN g % 6 IN (3, 5) THEN 'error ' || g END,
                   CASE WHEN g % 6 = 2 THEN jsonb_build_object('ok', g) END,
                   now() - interval '1 day',
                   CASE WHEN g % 12 = 1 THEN now() - interval '2 hours'
                        WHEN g % 12 = 7 THEN now() - interval '1 minute'
                        ELSE now() - g * interval '1 second' END,
                   CASE WHEN g % 6 <> 0 THEN now() - interval '3 hours' END,
                   CASE WHEN g % 6 IN (2, 3, 4, 5) THEN now() - interval '2 hours' END
              FROM generate_series(1, 1000) g
            """;

    /** The V1 columns of every row before adoption, and every column of every row right after it. */
    static List<Map<String, Object>> legacyBefore;
    static List<Map<String, Object>> adopted;

    @BeforeAll
    static void legacyInstallationWithRowsIsAdopted() throws IOException, SQLException {
        String v1 = Files.readString(Path.of("db/migrations/V1__tasks.sql"));
        try (Connection c = db.database().dataSource().getConnection(); Statement st = c.createStatement()) {
            st.execute(v1);
            st.execute(LEGACY_ROWS);
        }
        legacyBefore = db.rows("SELECT " + V1_COLUMNS + " FROM tasks ORDER BY id");

        Database.flyway(db.database().dataSource(), "1").migrate();
        adopted = db.rows("SELECT * FROM tasks ORDER BY id");
    }

    @Test
    void everyLegacyRowKeepsItsValuesInTheV1Columns() {
        assertThat(legacyBefore).hasSize(1000);
        assertThat(legacyBefore).extracting(r -> r.get("status")).contains("pending", "running", "succeeded", "failed",
                "cancelled", "quarantined");

        List<String> v1 = List.of(V1_COLUMNS.split(", "));
        assertThat(adopted).hasSize(1000).allSatisfy(r -> assertThat(r).containsKeys("owner_id", "lease_token"));
        assertThat(adopted.stream().map(r -> {
            Map<String, Object> only = new java.util.LinkedHashMap<>();
            v1.forEach(c -> only.put(c, r.get(c)));
            return only;
        }).toList()).isEqualTo(legacyBefore);
    }

    @Test
    void leaseAndRuntimeColumnsTakeTheirDefaultsOnLegacyRows() {
        assertThat(adopted).hasSize(1000).allSatisfy(r -> assertThat(r)
                .containsEntry("lease_token", 0L).containsEntry("requeue_count", 0)
                .containsEntry("owner_id", null).containsEntry("lease_expires_at", null)
                .containsEntry("last_heartbeat_at", null).containsEntry("idempotency_key", null)
                .containsEntry("progress", null));
    }

    @Test
    void adoptedDatabaseIsAtTheLatestSchemaWithABaselineAtVersion1() throws IOException {
        Flyway flyway = Database.flyway(db.database().dataSource(), null);
        String latest = MigrationsTest.latestFileVersion();

        assertThat(flyway.info().current().getVersion().getVersion()).isEqualTo(latest);
        assertThat(flyway.info().pending()).isEmpty();
        assertThat(db.database().requireCurrentSchema()).isEqualTo(latest);
        assertThat(db.rows("SELECT version, type, description FROM pgdispatch_schema_history ORDER BY installed_rank"))
                .extracting(r -> r.get("version"), r -> r.get("type"))
                .startsWith(tuple("1", "BASELINE"), tuple("2", "SQL"))
                .endsWith(tuple(latest, "SQL"));
        assertThat(db.count("pg_indexes WHERE indexname = 'tasks_status_run_at_idx'")).isZero();
        assertThat(db.count("pg_indexes WHERE indexname = 'tasks_claim_idx'")).isOne();
    }

    @Test
    void reaperTreatsALegacyRunningRowNotTouchedForLongAsStale() {
        List<Long> oldRunning = ids("SELECT id FROM tasks WHERE status = 'running' AND updated_at < now() - interval '1 hour' ORDER BY id");
        List<Long> recentRunning = ids("SELECT id FROM tasks WHERE status = 'running' AND updated_at > now() - interval '1 hour' ORDER BY id");
        assertThat(oldRunning).hasSize(84);
        assertThat(recentRunning).hasSize(83);

        Optional<List<StaleTask>> swept = new TaskStore(db.database().dataSource())
                .requeueStale(Duration.ofMinutes(15), Duration.ofSeconds(90), 3, 1000);

        assertThat(swept).get().asInstanceOf(InstanceOfAssertFactories.list(StaleTask.class))
                .allSatisfy(t -> {
                    assertThat(t.action()).isEqualTo("requeue");
                    assertThat(t.owner()).isNull();
                    assertThat(t.leaseToken()).isZero();
                    assertThat(t.reason()).startsWith("no heartbeat since ");
                })
                .extracting(StaleTask::id).containsExactlyElementsOf(oldRunning);
        assertThat(db.count("tasks WHERE id IN (" + csv(oldRunning) + ") AND status = 'pending' AND owner_id IS NULL"
                + " AND requeue_count = 1")).isEqualTo(oldRunning.size());
        assertThat(db.count("task_events WHERE event = 'requeued' AND task_id IN (" + csv(oldRunning) + ")"))
                .isEqualTo(oldRunning.size());
        assertThat(db.count("tasks WHERE id IN (" + csv(recentRunning) + ") AND status = 'running'"))
                .isEqualTo(recentRunning.size());
    }

    private static List<Long> ids(String sql) {
        return db.rows(sql).stream().map(r -> ((Number) r.get("id")).longValue()).toList();
    }

    private static String csv(List<Long> ids) {
        return String.join(",", ids.stream().map(String::valueOf).toList());
    }
}

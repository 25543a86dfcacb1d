package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 11, item 4: one row inserted by plain SQL never stops a node's claims. A counter at its type's
 * maximum made every claim fail with "integer out of range" (in all the node's queues); a huge payload
 * was loaded whole into the claimer's heap. Such a row is now quarantined by the claim, with the
 * reason (a counter at the very maximum is stored one below it: V8's check applies to every update),
 * and the rest of the batch is claimed; V8 refuses new rows without counter headroom.
 */
class PoisonedRowTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private TaskStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log RESTART IDENTITY");
        store = new TaskStore(db.database());
    }

    private static ClaimRequest claim(int limit, int maxPayloadBytes) {
        return new ClaimRequest("node-a", List.of("default", "other"), Map.of("work", Duration.ofMinutes(5)), limit, 3,
                true, maxPayloadBytes);
    }

    /** A legacy row: inserted past V8's NOT VALID check, as an installation from before it may hold. */
    private long legacyRow(String columns, String values) {
        db.exec("ALTER TABLE tasks DROP CONSTRAINT tasks_counter_headroom_check");
        try {
            return (Long) db.rows("INSERT INTO tasks (kind, " + columns + ") VALUES ('work', " + values + ") RETURNING id")
                    .get(0).get("id");
        } finally {
            db.exec("ALTER TABLE tasks ADD CONSTRAINT tasks_counter_headroom_check CHECK (attempts < 2147483647"
                    + " AND requeue_count < 2147483647 AND lease_token < 9223372036854775807) NOT VALID");
        }
    }

    private void healthyRows() {
        db.exec("INSERT INTO tasks (kind, queue) VALUES ('work', 'default'), ('work', 'other')");
    }

    private Map<String, Object> row(long id) {
        return db.rows("SELECT status, last_error, attempts, lease_token FROM tasks WHERE id = " + id).get(0);
    }

    @Test
    void rowWithAttemptsAtItsTypesMaximumIsQuarantinedAndTheRestIsClaimed() {
        long poisoned = legacyRow("attempts", "2147483647");
        healthyRows();

        List<ClaimedTask> got = store.claimDue(claim(10, 1 << 20));

        assertThat(got).extracting(ClaimedTask::id).doesNotContain(poisoned).hasSize(2);
        assertThat(row(poisoned)).containsEntry("status", "quarantined").containsEntry("attempts", 2147483646)
                .containsEntry("last_error", "quarantined: attempts=2147483647 leaves no room for another attempt (V8: below 2147483647)");
        assertThat(db.rows("SELECT detail->>'by' AS by FROM task_events WHERE event = 'quarantined' AND task_id = " + poisoned))
                .containsExactly(Map.of("by", "claim"));
    }

    @Test
    void rowWithLeaseTokenAtItsTypesMaximumIsQuarantinedAndTheRestIsClaimed() {
        long poisoned = legacyRow("lease_token", "9223372036854775807");
        healthyRows();

        List<ClaimedTask> got = store.claimDue(claim(10, 1 << 20));

        assertThat(got).hasSize(2);
        assertThat(row(poisoned)).containsEntry("status", "quarantined").containsEntry("lease_token", Long.MAX_VALUE - 1);
        assertThat((String) row(poisoned).get("last_error")).contains("lease_token=9223372036854775807 leaves no room");
    }

    @Test
    void expiredRunningRowWithAttemptsAtItsMaximumIsQuarantinedNotTakenOver() {
        long poisoned = legacyRow("attempts, status, owner_id, lease_expires_at, started_at",
                "2147483647, 'running', 'node-gone', now() - interval '1 minute', now() - interval '2 minutes'");
        healthyRows();

        assertThat(store.claimDue(claim(10, 1 << 20))).hasSize(2);
        assertThat(row(poisoned)).containsEntry("status", "quarantined");
    }

    @Test
    void rowWithRequeueCountAtItsTypesMaximumIsQuarantinedAndTheRestIsClaimed() {
        long poisoned = legacyRow("requeue_count", "2147483647");
        healthyRows();

        assertThat(store.claimDue(claim(10, 1 << 20))).hasSize(2);
        assertThat(row(poisoned)).containsEntry("status", "quarantined");
    }

    @Test
    void schemaRefusesANewRowWithoutCounterHeadroom() {
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, attempts) VALUES ('work', 2147483647)"))
                .hasMessageContaining("tasks_counter_headroom_check");
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, lease_token) VALUES ('work', 9223372036854775807)"))
                .hasMessageContaining("tasks_counter_headroom_check");
    }

    @Test
    void payloadWhoseStoredSizeExceedsTheBoundIsQuarantinedWithoutBeingLoaded() {
        // incompressible text (md5 strings): its stored size is about its length
        long big = (Long) db.rows("INSERT INTO tasks (kind, payload) SELECT 'work', jsonb_build_object('s',"
                + " string_agg(md5(i::text), '')) FROM generate_series(1, 200) i RETURNING id").get(0).get("id");
        healthyRows();

        List<ClaimedTask> got = store.claimDue(claim(10, 2000));

        assertThat(got).extracting(ClaimedTask::id).doesNotContain(big).hasSize(2);
        assertThat(row(big)).containsEntry("status", "quarantined");
        assertThat((String) row(big).get("last_error")).matches("quarantined: payload of \\d+ bytes stored exceeds TASK_MAX_PAYLOAD_BYTES=2000");
    }

    @Test
    void payloadThatCompressesBelowTheBoundButIsLargerAsTextIsQuarantinedAfterTheClaim() {
        long big = (Long) db.rows("INSERT INTO tasks (kind, payload) VALUES ('work', jsonb_build_object('s', repeat('a', 100000)))"
                + " RETURNING id").get(0).get("id");
        assertThat(db.rows("SELECT pg_column_size(payload) AS n FROM tasks WHERE id = " + big).get(0).get("n"))
                .as("stored compressed, below the bound").matches(n -> ((Number) n).intValue() < 5000);
        healthyRows();

        List<ClaimedTask> got = store.claimDue(claim(10, 5000));

        assertThat(got).extracting(ClaimedTask::id).doesNotContain(big).hasSize(2);
        assertThat(got).allMatch(t -> t.payloadJson().length() < 100);
        assertThat(row(big)).containsEntry("status", "quarantined");
        assertThat((String) row(big).get("last_error")).contains("exceeds TASK_MAX_PAYLOAD_BYTES=5000");
    }
}

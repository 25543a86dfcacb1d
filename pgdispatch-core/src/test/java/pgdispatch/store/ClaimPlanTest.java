package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * The claim walks tasks_claim_idx and stops after its batch, on freshly analyzed statistics too, where
 * the planner knows the whole backlog is due: the lock-then-limit trap (read every due row, sort, then
 * lock the first ones) must not come back through a selectivity estimate. It did once: the guard
 * against legacy rows, {@code jsonb_typeof(payload) = 'object'}, is estimated at 0.5% of the rows, so a
 * batch of 500 out of 20,000 looked like "all of them" and the planner chose Seq Scan + Sort (70-100 ms
 * per claim of 100,000 rows, against 10-15 ms). A plan assertion, not a timing one.
 */
class ClaimPlanTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @Test
    void aFullBatchFromAnAnalyzedBacklogIsReadFromTheClaimIndexWithoutASort() {
        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, 20000)");
        db.exec("VACUUM ANALYZE tasks");
        var request = new ClaimRequest("node-a", List.of("default"),
                Map.of("noop", Duration.ofMinutes(5), "echo", Duration.ofMinutes(5)), 500, 3, false);

        String plan = String.join("\n", new TaskStore(db.database()).explainClaim(request));

        // "tasks t" is the candidate read; the UPDATE's join back to its 500 rows (tasks t_1) may
        // rightly hash a small table
        assertThat(plan).contains("Index Scan using tasks_claim_idx on tasks t ")
                .doesNotContain("Seq Scan on tasks t ")
                .doesNotContain("Sort Key: t.priority");
        assertThat(db.count("tasks WHERE status = 'pending'")).as("EXPLAIN ANALYZE was rolled back").isEqualTo(20000);
    }
}

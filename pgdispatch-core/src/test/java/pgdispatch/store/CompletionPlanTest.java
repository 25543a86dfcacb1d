package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * The completion statement reads the rows it completes and nothing else, even on the statistics of a
 * fresh backlog (analyzed while every row was pending, not since): a completion that joined every
 * outcome with the finished rows scanned all of them on each batch (87 ms for 500 outcomes after
 * 100,000 completions, measured with pgbench; docs/PERFORMANCE.md). A plan assertion, not a timing one.
 */
class CompletionPlanTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Pattern REMOVED = Pattern.compile("Rows Removed by (?:Filter|Join Filter|Index Recheck): (\\d+)");

    @Test
    void completingABatchAfterThousandsOfCompletionsTouchesOnlyTheBatchOnStaleStatistics() {
        TaskStore store = new TaskStore(db.database());
        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, 3000)");
        db.exec("ANALYZE tasks");
        var request = new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(5)), 500, 3);
        List<ClaimedTask> batch;
        while (!(batch = store.claimDue(request)).isEmpty()) {
            store.completeIfOwned("node-a", batch.stream().map(t -> (Outcome) new Outcome.Success(t.id(), t.leaseToken(), null)).toList());
        }
        assertThat(db.count("tasks WHERE status = 'succeeded' AND owner_id = 'node-a'")).isEqualTo(3000);

        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, 20)");
        List<ClaimedTask> last = store.claimDue(request);
        assertThat(last).hasSize(20);

        String plan = explainComplete("node-a", last);

        assertThat(plan).doesNotContain("tasks_finished_idx").doesNotContain("Seq Scan on tasks");
        long removed = 0;
        Matcher m = REMOVED.matcher(plan);
        while (m.find()) removed += Long.parseLong(m.group(1));
        assertThat(removed).as("rows read and thrown away:%n%s", plan).isLessThanOrEqualTo(100);
        assertThat(db.count("tasks WHERE status = 'running'")).as("the EXPLAIN ANALYZE was rolled back").isEqualTo(20);
    }

    private static String explainComplete(String owner, List<ClaimedTask> tasks) {
        Long[] ids = tasks.stream().map(ClaimedTask::id).toArray(Long[]::new);
        Long[] tokens = tasks.stream().map(ClaimedTask::leaseToken).toArray(Long[]::new);
        return String.join("\n", new TaskStore(db.database()).explain(TaskStore.COMPLETE,
                Map.of("ids", ids, "tokens", tokens, "results", new String[ids.length], "owner", owner)));
    }
}

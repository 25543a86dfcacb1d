package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.OffsetDateTime;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.store.TaskQueries.TaskFilter;
import pgdispatch.testing.TestDatabase;

/**
 * The dashboard's task listing stays an index walk on a big, analyzed table: newest first by the
 * primary key, stopping after the page (keyset: {@code id < before}, never OFFSET), with no sort of
 * every matching row and no sequential scan, whatever the filter. A plan assertion, not a timing one.
 */
class TaskPagePlanTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static TaskQueries queries;

    @BeforeAll
    static void bigTable() {
        // 200,000 rows: mostly succeeded, some pending, a few failed, in three queues
        db.exec("""
                INSERT INTO tasks (queue, kind, status, attempts, run_at, finished_at, created_at)
                SELECT (ARRAY['default','emails','reports'])[1 + g % 3], (ARRAY['noop','send_email'])[1 + g % 2],
                       CASE WHEN g % 1000 = 0 THEN 'failed' WHEN g % 10 = 0 THEN 'pending' ELSE 'succeeded' END,
                       CASE WHEN g % 10 = 0 AND g % 1000 <> 0 THEN 0 ELSE 1 END,
                       now(), CASE WHEN g % 10 = 0 AND g % 1000 <> 0 THEN NULL ELSE now() END,
                       now() - (200000 - g) * interval '1 second'
                  FROM generate_series(1, 200000) g
                """);
        db.exec("VACUUM ANALYZE tasks");
        queries = new TaskQueries(db.database());
    }

    @Test
    void theFirstPageWalksThePrimaryKeyBackwardAndStops() {
        assertIndexWalk(queries.explainPage(TaskFilter.NONE, null, 50));
    }

    @Test
    void aLaterPageStartsBelowItsCursor() {
        String plan = queries.explainPage(TaskFilter.NONE, 150_000L, 50);
        assertIndexWalk(plan);
        assertThat(plan).contains("Index Cond: (id < 150000)");
    }

    @Test
    void commonFiltersKeepTheWalk() {
        assertIndexWalk(queries.explainPage(new TaskFilter(null, "emails", "send_email", "succeeded", null, null, null), 100_000L, 50));
        assertIndexWalk(queries.explainPage(new TaskFilter(null, null, null, null, null,
                OffsetDateTime.now().minusDays(30), OffsetDateTime.now()), null, 50));
    }

    @Test
    void aRareStatusIsReadThroughAnIndexNotAScan() {
        String plan = queries.explainPage(new TaskFilter(null, null, null, "failed", null, null, null), null, 50);
        assertThat(plan).contains("Limit").doesNotContain("Seq Scan");
    }

    @Test
    void anIdIsOneIndexLookup() {
        assertThat(queries.explainPage(new TaskFilter(123L, null, null, null, null, null, null), null, 50))
                .contains("Index Scan").contains("tasks_pkey").doesNotContain("Seq Scan");
    }

    @Test
    void pagesDoNotOverlapAndEndWithoutACursor() {
        TaskFilter failed = new TaskFilter(null, null, null, "failed", null, null, null);
        TaskQueries.TaskPage first = queries.page(failed, null, 150);
        TaskQueries.TaskPage second = queries.page(failed, first.nextBefore(), 150);
        assertThat(first.tasks()).hasSize(150);
        assertThat(second.tasks()).hasSize(50);
        assertThat(second.nextBefore()).isNull();
        assertThat(first.tasks().get(149).id()).isGreaterThan(second.tasks().get(0).id());
        assertThat(first.nextBefore()).isEqualTo(first.tasks().get(149).id());
    }

    private static void assertIndexWalk(String plan) {
        assertThat(plan).as(plan).contains("Limit").contains("Index Scan Backward using tasks_pkey on tasks")
                .doesNotContain("Seq Scan").doesNotContain("Sort");
    }
}

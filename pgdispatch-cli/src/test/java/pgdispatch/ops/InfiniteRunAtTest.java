package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 13: {@code run_at = 'infinity'} or {@code '-infinity'} is refused by the schema (V9, NOT VALID
 * like the other guards), and a legacy row holding one (inserted before V9) breaks no reader: status,
 * tasks list/show, the lag and depth gauges; the claim leaves it alone and claims the rest.
 */
class InfiniteRunAtTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private long future;
    private long past;
    private long normal;

    @BeforeEach
    void legacyRows() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        // rows from before V9: its check is NOT VALID, so they exist; here they are made the way they were then
        db.exec("ALTER TABLE tasks DROP CONSTRAINT tasks_run_at_finite_check");
        future = insert("INSERT INTO tasks (kind, run_at) VALUES ('noop', 'infinity')");
        past = insert("INSERT INTO tasks (kind, run_at) VALUES ('noop', '-infinity')");
        db.exec("ALTER TABLE tasks ADD CONSTRAINT tasks_run_at_finite_check CHECK (isfinite(run_at)) NOT VALID");
        normal = insert("INSERT INTO tasks (kind, run_at) VALUES ('noop', now() - interval '10 seconds')");
    }

    private long insert(String sql) {
        return ((Number) db.rows(sql + " RETURNING id").get(0).get("id")).longValue();
    }

    @Test
    void schemaRefusesAnInfiniteRunAt() {
        for (String value : new String[] {"infinity", "-infinity"}) {
            assertThatThrownBy(() -> db.exec("INSERT INTO tasks (kind, run_at) VALUES ('noop', '" + value + "')"))
                    .hasMessageContaining("tasks_run_at_finite_check")
                    .hasRootCauseInstanceOf(SQLException.class);
            assertThatThrownBy(() -> db.exec("UPDATE tasks SET run_at = '" + value + "' WHERE id = " + normal))
                    .hasMessageContaining("tasks_run_at_finite_check");
        }
    }

    @Test
    void statusAndGaugesIgnoreTheLegacyRowsAge() {
        Cli.Run status = Cli.run(db.url(), "status");
        assertThat(status.code()).as(status.err()).isZero();
        assertThat(status.out()).doesNotContain("SELECT").contains("default                      0         3         0");

        Map<String, double[]> gauges = new TaskQueries(db.database().dataSource()).depthAndLag();
        assertThat(gauges.get("default")[0]).as("depth: only the claimable task").isEqualTo(1.0);
        assertThat(gauges.get("default")[1]).as("lag: the claimable task's age").isBetween(9.0, 60.0);
        var stats = new TaskQueries(db.database().dataSource()).queueStats(Duration.ofMinutes(1), Duration.ofMinutes(1));
        assertThat(stats).singleElement().satisfies(q -> {
            assertThat(q.byStatus()).containsEntry("pending", 3L);
            assertThat(q.lagSeconds()).isBetween(9.0, 60.0);
        });
    }

    @Test
    void tasksListAndShowPrintTheInfiniteRunAt() {
        Cli.Run list = Cli.run(db.url(), "tasks", "list");
        assertThat(list.code()).as(list.err()).isZero();
        assertThat(list.out()).contains("infinity").contains("-infinity");

        Cli.Run show = Cli.run(db.url(), "tasks", "show", "" + past);
        assertThat(show.code()).as(show.err()).isZero();
        assertThat(show.out()).contains("-infinity");
        Cli.Run json = Cli.run(db.url(), "tasks", "show", "" + future, "--json");
        assertThat(json.code()).as(json.err()).isZero();
        assertThat(json.out()).contains("\"run_at\" : \"infinity\"");

        // the dashboard's listing reads the same way: MAX/MIN stand for the infinities
        var page = new TaskQueries(db.database().dataSource()).page(TaskQueries.TaskFilter.NONE, null, 10);
        assertThat(page.tasks()).extracting(t -> t.id() + "=" + t.runAt())
                .contains(future + "=" + java.time.OffsetDateTime.MAX, past + "=" + java.time.OffsetDateTime.MIN);
    }

    @Test
    void claimTakesTheDueTaskAndLeavesTheLegacyRowsPending() {
        TaskStore store = new TaskStore(db.database());
        var claimed = store.claimDue(new ClaimRequest("node-a", List.of("default"), Map.of("noop", Duration.ofMinutes(1)), 10, 3));

        assertThat(claimed).extracting(t -> t.id()).containsExactly(normal);
        assertThat(db.count("tasks WHERE status = 'pending' AND id IN (" + future + ", " + past + ")")).isEqualTo(2);
        assertThat(store.cancel(past, "legacy row")).isTrue(); // an operator can still clear it
        assertThat(db.count("tasks WHERE id = " + past + " AND status = 'cancelled' AND isfinite(run_at)")).isOne();
    }
}

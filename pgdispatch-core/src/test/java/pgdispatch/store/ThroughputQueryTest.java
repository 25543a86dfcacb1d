package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.store.TaskQueries.Throughput;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/** The dashboard's throughput per minute, counted from task_events. */
class ThroughputQueryTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    TaskQueries queries;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        queries = new TaskQueries(db.database());
    }

    @Test
    void throughputCountsEventsPerMinuteForEveryMinuteOfTheWindow() {
        long id = TaskRows.pending(db);
        // the events are placed relative to the current minute: start early in one so it cannot turn mid-test
        org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(15)).until(() ->
                ((Number) db.rows("SELECT extract(second FROM now())::int AS s").get(0).get("s")).intValue() < 45);
        db.exec("INSERT INTO task_events (task_id, event, at) VALUES"
                + " (" + id + ", 'claimed', date_trunc('minute', now()) - interval '2 minutes' + interval '10 seconds'),"
                + " (" + id + ", 'retry_scheduled', date_trunc('minute', now()) - interval '2 minutes' + interval '20 seconds'),"
                + " (" + id + ", 'claimed', date_trunc('minute', now()) - interval '1 minute'),"
                + " (" + id + ", 'succeeded', date_trunc('minute', now()) + interval '1 second'),"
                + " (" + id + ", 'claimed', now() - interval '2 hours')");

        List<Throughput> t = queries.throughput(60);

        assertThat(t).hasSize(60);
        assertThat(t.get(59).minute().toEpochSecond() % 60).isZero();
        assertThat(t.subList(56, 60)).extracting(Throughput::claimed, Throughput::succeeded, Throughput::failed)
                .containsExactly(org.assertj.core.groups.Tuple.tuple(0L, 0L, 0L), org.assertj.core.groups.Tuple.tuple(1L, 0L, 1L),
                        org.assertj.core.groups.Tuple.tuple(1L, 0L, 0L), org.assertj.core.groups.Tuple.tuple(0L, 1L, 0L));
        assertThat(t.stream().mapToLong(Throughput::claimed).sum()).as("the event two hours ago is outside").isEqualTo(2);
    }

    @Test
    void throughputAndEventCountsIncludeTheClaimsAndSuccessesShownFromTaskRows() {
        // V13: a plain claim and its success store no row; both counts must see them all the same
        TaskStore store = new TaskStore(db.database());
        long done = store.enqueue(new NewTask("default", "noop", "{}", 0, null, 3, null));
        long running = store.enqueue(new NewTask("default", "noop", "{}", 0, null, 3, null));
        List<ClaimedTask> claimed = store.claimDue(new ClaimRequest("node-a", List.of("default"),
                java.util.Map.of("noop", Duration.ofMinutes(5)), 2, 3, false));
        ClaimedTask first = claimed.stream().filter(c -> c.id() == done).findFirst().orElseThrow();
        store.completeIfOwned("node-a", List.of(new Outcome.Success(done, first.leaseToken(), null)));
        assertThat(db.count("task_event_log")).isZero();
        assertThat(db.count("tasks WHERE id = " + running + " AND status = 'running'")).isOne();

        List<Throughput> t = queries.throughput(5);
        assertThat(t.stream().mapToLong(Throughput::claimed).sum()).isEqualTo(2);
        assertThat(t.stream().mapToLong(Throughput::succeeded).sum()).isEqualTo(1);
        assertThat(queries.eventCounts(Duration.ofHours(1))).containsOnly(java.util.Map.entry("claimed", 2L),
                java.util.Map.entry("succeeded", 1L));
        // editing the row's times does not move its history: the events are stored first, with their times
        db.exec("UPDATE tasks SET started_at = now() - interval '3 hours', finished_at = now() - interval '3 hours' WHERE id = " + done);
        assertThat(db.count("task_event_log WHERE task_id = " + done)).isEqualTo(2);
        assertThat(queries.eventCounts(Duration.ofHours(1))).containsOnly(java.util.Map.entry("claimed", 2L),
                java.util.Map.entry("succeeded", 1L));
    }
}

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
        db.exec("TRUNCATE tasks, task_events, dispatcher_nodes");
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
}

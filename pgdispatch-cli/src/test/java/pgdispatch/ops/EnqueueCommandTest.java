package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static pgdispatch.ops.ReapCommandTest.assertUsage;

import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class EnqueueCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void empty() {
        db.exec("TRUNCATE tasks, task_events");
    }

    @Test
    void insertsOneTaskAndPrintsItsId() {
        Cli.Run r = Cli.run(db.url(), "enqueue", "--kind", "sleep", "--payload", "{\"ms\": 10}", "--queue", "mail",
                "--priority", "-5", "--max-attempts", "2", "--idempotency-key", "order-1");

        assertThat(r.code()).as(r.err()).isZero();
        long id = Long.parseLong(r.out().strip());
        Map<String, Object> row = db.rows("SELECT kind, queue, priority, max_attempts, payload::text AS p, status FROM tasks WHERE id = " + id).get(0);
        assertThat(row).containsEntry("kind", "sleep").containsEntry("queue", "mail").containsEntry("priority", -5)
                .containsEntry("max_attempts", 2).containsEntry("p", "{\"ms\": 10}").containsEntry("status", "pending");

        // the same request again: the same task
        Cli.Run again = Cli.run(db.url(), "enqueue", "--kind", "sleep", "--payload", "{\"ms\": 10}", "--queue", "mail",
                "--idempotency-key", "order-1");
        assertThat(again.out().strip()).isEqualTo("" + id);
        // another task under the same key: refused, naming the existing one (issue 14)
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "sleep", "--idempotency-key", "order-1"),
                "pgdispatch: idempotency_key 'order-1' is already used by task " + id
                        + " with queue 'mail' (not 'default'), a different payload");
        assertThat(db.count("tasks")).isEqualTo(1);
    }

    @Test
    void badPayloadQueuePriorityOrTimeAreUsageErrorsAndInsertNothing() {
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--payload", "[1, 2]"),
                "pgdispatch: payload must be a JSON object ({...}), got array");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--payload", "{\"a\": "),
                "pgdispatch: payload is not valid JSON: Unexpected end-of-input within/between Object entries (line 1, column 7)");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--queue", "bad queue"),
                "pgdispatch: queue='bad queue' must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--priority", "5000"),
                "pgdispatch: priority=5000 must be from -1000 to 1000 (lower runs first)");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--run-at", "tomorrow"),
                "pgdispatch: --run-at=tomorrow must be an ISO-8601 time with offset, e.g. 2026-11-25T08:00:00Z");
        assertThat(Cli.run(db.url(), "enqueue", "--kind", "noop", "--priority", "high").errLines()).singleElement().asString()
                .startsWith("pgdispatch: Invalid value for option '--priority': 'high' is not an int");
        assertThat(Cli.run(db.url(), "enqueue").errLines()).singleElement().asString()
                .startsWith("pgdispatch: Missing required option: '--kind=K'");
        assertThat(db.count("tasks")).isZero();
    }
}

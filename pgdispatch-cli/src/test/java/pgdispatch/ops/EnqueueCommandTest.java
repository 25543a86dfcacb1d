package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static pgdispatch.ops.ReapCommandTest.assertUsage;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import pgdispatch.testing.TestDatabase;

class EnqueueCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void empty() {
        db.exec("TRUNCATE tasks, task_event_log, task_dependencies");
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
    void aUniqueTaskIsEnqueuedOnceAndTheSecondEnqueueSaysWhichTaskHoldsTheKey() throws Exception {
        String[] args = {"enqueue", "--kind", "report", "--payload", "{\"customer\": 42, \"v\": 1}", "--unique-by", "payload.customer"};
        Cli.Run first = Cli.run(db.url(), args);
        assertThat(first.code()).as(first.err()).isZero();
        long id = Long.parseLong(first.out().strip());

        Cli.Run second = Cli.run(db.url(), "enqueue", "--kind", "report", "--payload", "{\"v\": 2, \"customer\": 42}",
                "--unique-by", "payload.customer", "--json");
        var j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(second.out());
        assertThat(j.get("id").asLong()).isEqualTo(id);
        assertThat(j.get("created").asBoolean()).isFalse();
        assertThat(j.get("conflict").asText()).isEqualTo("unique_key");
        assertThat(j.get("status").asText()).isEqualTo("pending");

        Cli.Run third = Cli.run(db.url(), args);
        assertThat(third.out().strip()).isEqualTo("" + id);
        assertThat(third.errLines()).containsExactly("pgdispatch: not enqueued again: task " + id + " holds this unique key (status pending)");
        assertThat(db.count("tasks")).isOne();

        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "report", "--unique-by", "customer"),
                "pgdispatch: --unique-by=customer must be queue, payload or payload.NAME");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "report", "--unique-also", "running"),
                "pgdispatch: unique states: running is always held; name only finished statuses (succeeded, failed, cancelled, quarantined)");
    }

    @Test
    void aTaskWithDependenciesWaitsIsShownWithThemAndIsReleasedOrCancelled() throws Exception {
        long a = Long.parseLong(Cli.run(db.url(), "enqueue", "--kind", "extract").out().strip());
        long b = Long.parseLong(Cli.run(db.url(), "enqueue", "--kind", "extract").out().strip());
        Cli.Run waiting = Cli.run(db.url(), "enqueue", "--kind", "load", "--depends-on", a + "," + b);
        assertThat(waiting.code()).as(waiting.err()).isZero();
        long x = Long.parseLong(waiting.out().strip());
        assertThat(waiting.errLines()).containsExactly("pgdispatch: task " + x + " is waiting (see: pgdispatch tasks show " + x + ")");
        Cli.Run anyway = Cli.run(db.url(), "enqueue", "--kind", "report", "--depends-on", "" + a, "--run-anyway", "--json");
        var j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(anyway.out());
        long y = j.get("id").asLong();
        assertThat(j.get("status").asText()).isEqualTo("waiting");

        Cli.Run show = Cli.run(db.url(), "tasks", "show", "" + x);
        assertThat(show.out()).contains("DEPENDS ON (2, 2 not ended; if one ends other than succeeded: cancel)")
                .containsPattern("\\n  " + a + " +extract +pending\\n").containsPattern("\\n  " + b + " +extract +pending\\n");
        var shown = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Cli.run(db.url(), "tasks", "show", "" + y, "--json").out());
        assertThat(shown.get("dependencies").get("on_failure").asText()).isEqualTo("run");
        assertThat(shown.get("dependencies").get("tasks").get(0).get("id").asLong()).isEqualTo(a);
        assertThat(Cli.run(db.url(), "tasks", "list", "--status", "waiting").out()).contains("load", "report");

        assertThat(Cli.run(db.url(), "tasks", "cancel", "" + a, "--reason", "not needed").code()).isZero();
        assertThat(db.rows("SELECT status, last_error FROM tasks WHERE id = " + x).get(0))
                .containsEntry("status", "cancelled").containsEntry("last_error", "dependency " + a + " ended cancelled");
        assertThat(db.rows("SELECT status FROM tasks WHERE id = " + y).get(0)).containsEntry("status", "pending");

        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "load", "--depends-on", "999999"),
                "pgdispatch: depends_on: task 999999 does not exist (rule: a task depends only on tasks that exist before it)");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "load", "--depends-on", "x1"),
                "pgdispatch: --depends-on=x1 must be a positive whole number");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "load", "--run-anyway"),
                "pgdispatch: --run-anyway applies with --depends-on only");
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

    @Test
    void payloadIsStoredExactlyAsSentOrRefusedWithTheRule() { // issue 13
        Cli.Run r = Cli.run(db.url(), "enqueue", "--kind", "noop", "--payload", "{\"a\":1e400,\"b\":12345678901234567890}");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(db.rows("SELECT payload->'a' = '1e400'::jsonb AS a, payload->>'b' AS b FROM tasks").get(0))
                .containsEntry("a", true).containsEntry("b", "12345678901234567890");

        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--payload", "{\"a\":\"\\udc00\"}"),
                "pgdispatch: payload.a contains a lone UTF-16 surrogate \\uDC00, which is not a Unicode character; send a surrogate"
                        + " pair or another character");
        assertUsage(Cli.run(db.url(), "enqueue", "--kind", "noop", "--payload", "[".repeat(5000) + "]".repeat(5000)),
                "pgdispatch: payload nests objects and arrays deeper than 200 levels (the nesting limit)");
        assertThat(db.count("tasks")).isOne();
    }

    @Test
    void argumentStartingWithAtIsTheLiteralValueNeverAFileToRead(@TempDir Path dir) throws Exception { // issue 13
        Path file = dir.resolve("args");
        Files.writeString(file, "vm-secret-kind\n");

        Cli.Run r = Cli.run(db.url(), "enqueue", "--kind", "@" + file);

        assertUsage(r, "pgdispatch: kind='@" + file + "' must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        assertThat(r.out() + r.err()).doesNotContain("vm-secret-kind");
        assertThat(db.count("tasks")).isZero();

        Cli.Run payload = Cli.run(db.url(), "enqueue", "--kind", "noop", "--payload", "@" + file);
        assertThat(payload.code()).isEqualTo(2);
        assertThat(payload.out() + payload.err()).doesNotContain("vm-secret-kind");
        assertThat(db.count("tasks")).isZero();
    }
}

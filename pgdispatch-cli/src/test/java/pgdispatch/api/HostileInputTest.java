package pgdispatch.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import pgdispatch.ops.Env;
import pgdispatch.ops.Main;
import pgdispatch.store.NodeStore;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * Bad and hostile input to {@link TaskClient}: each is refused before it reaches the database with an
 * error naming the field, the value and the rule, and the stored data stays exactly as it was.
 */
class HostileInputTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final int LIMIT = 1024;
    private final TaskClient client = new TaskClient(new TaskStore(db.database()), LIMIT);
    private String before;

    @BeforeEach
    void someStoredData() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        client.enqueue(TaskClient.Enqueue.of("noop", "{\"keep\":\"me\"}"));
        client.enqueue(TaskClient.Enqueue.of("echo", "{\"n\":2}").queue("other").priority(5));
        before = snapshot();
    }

    @AfterEach
    void restoreEnv() {
        Env.override(null);
    }

    /** Every row of both tables, every column, as text. */
    private static String snapshot() {
        return db.rows("SELECT * FROM tasks ORDER BY id").toString() + db.rows("SELECT * FROM task_events ORDER BY id");
    }

    private void refused(TaskClient.Enqueue e, String field, String message) {
        assertThatThrownBy(() -> client.enqueue(e))
                .isInstanceOf(InvalidTaskException.class)
                .hasMessage(message)
                .satisfies(x -> assertThat(((InvalidTaskException) x).field()).isEqualTo(field));
        assertThat(snapshot()).as("stored data untouched").isEqualTo(before);
    }

    // ---------------------------------------------------------------- payload

    @Test
    void payloadOverTheConfiguredLimitIsRefusedCountingUtf8Bytes() {
        String big = "{\"s\":\"" + "é".repeat(510) + "\"}"; // 510 characters, 1020 bytes of é, 1028 in all
        refused(TaskClient.Enqueue.of("noop", big), "payload", "payload of 1028 bytes exceeds TASK_MAX_PAYLOAD_BYTES=1024");
    }

    @Test
    void payloadAtTheLimitIsAccepted() {
        String exact = "{\"s\":\"" + "x".repeat(LIMIT - 8) + "\"}";
        assertThat(exact.length()).isEqualTo(LIMIT);
        assertThat(client.enqueue(TaskClient.Enqueue.of("noop", exact))).isPositive();
    }

    @Test
    void invalidJsonIsRefusedWithItsPosition() {
        refused(TaskClient.Enqueue.of("noop", "{\"a\": "), "payload",
                "payload is not valid JSON: Unexpected end-of-input within/between Object entries (line 1, column 7)");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[1,2]", "\"text\"", "42", "null", "true"})
    void nonObjectPayloadIsRefusedNamingWhatItIs(String payload) {
        String type = switch (payload.charAt(0)) {
            case '[' -> "array";
            case '"' -> "string";
            case '4' -> "number";
            case 'n' -> "null";
            default -> "boolean";
        };
        refused(TaskClient.Enqueue.of("noop", payload), "payload", "payload must be a JSON object ({...}), got " + type);
    }

    @Test
    void contentAfterTheObjectIsRefusedNotSilentlyDropped() {
        // Jackson's default would store {"a":1} and drop the rest without a word
        refused(TaskClient.Enqueue.of("noop", "{\"a\":1}{\"b\":2}"), "payload",
                "payload has more after its JSON value (line 1, column 8); send exactly one JSON object");
        refused(TaskClient.Enqueue.of("noop", "{\"a\":1} DROP TABLE tasks"), "payload",
                "payload is not valid JSON: Unrecognized token 'DROP': was expecting (JSON String, Number, Array, Object "
                        + "or token 'null', 'true' or 'false') (line 1, column 9)");
    }

    @Test
    void repeatedKeyIsRefusedNotSilentlyResolved() {
        refused(TaskClient.Enqueue.of("noop", "{\"a\":1,\"a\":2}"), "payload",
                "payload is not valid JSON: Duplicate field 'a' (line 1, column 11)");
    }

    @Test
    void nulCharacterThatJsonbCannotStoreIsRefused() {
        refused(TaskClient.Enqueue.of("noop", "{\"a\":\"x\\u0000y\"}"), "payload",
                "payload contains \\u0000, which PostgreSQL jsonb cannot store");
    }

    @Test
    void numbersBeyondDoubleAreStoredExactlyAsSent() { // issue 13: 1e400 was stored as "Infinity", 20 digits rounded
        String big = "123456789012345678901234567890.12345678901234567890";
        long id = client.enqueue(TaskClient.Enqueue.of("noop",
                "{\"a\":1e400,\"b\":12345678901234567890,\"c\":" + big + ",\"d\":-0.1}"));

        Map<String, Object> row = db.rows("SELECT payload->'a' = '1e400'::jsonb AS a, payload->>'b' AS b, payload->>'c' AS c,"
                + " payload->>'d' AS d, jsonb_typeof(payload->'a') AS ta FROM tasks WHERE id = " + id).get(0);
        assertThat(row).containsEntry("a", true).containsEntry("b", "12345678901234567890").containsEntry("c", big)
                .containsEntry("d", "-0.1").containsEntry("ta", "number");
    }

    @Test
    void loneSurrogateIsRefusedNotReplacedByAQuestionMark() { // issue 13: stored as "?"
        refused(TaskClient.Enqueue.of("noop", "{\"a\":\"x\\ud800y\"}"), "payload",
                "payload.a contains a lone UTF-16 surrogate \\uD800, which is not a Unicode character; send a surrogate pair"
                        + " or another character");
        refused(TaskClient.Enqueue.of("noop", "{\"a\":[\"\udc00\"]}"), "payload",
                "payload.a[0] contains a lone UTF-16 surrogate \\uDC00, which is not a Unicode character; send a surrogate pair"
                        + " or another character");
        refused(TaskClient.Enqueue.of("noop", "{\"\ud800\":1}"), "payload", // a raw one: Jackson refuses the escape in a key itself
                "payload key contains a lone UTF-16 surrogate \\uD800, which is not a Unicode character; send a surrogate pair"
                        + " or another character");
        long pair = client.enqueue(TaskClient.Enqueue.of("noop", "{\"a\":\"\\ud83d\\ude00\"}"));
        assertThat(db.rows("SELECT payload->>'a' AS a FROM tasks WHERE id = " + pair).get(0)).containsEntry("a", "\ud83d\ude00");
    }

    @Test
    void payloadNestedDeeperThanTheLimitIsRefusedNamingTheRule() { // issue 13: an NPE for 5,000 levels
        TaskClient roomy = new TaskClient(new TaskStore(db.database()), 1 << 20);
        String deep = "{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}";
        assertThatThrownBy(() -> roomy.enqueue(TaskClient.Enqueue.of("noop", deep)))
                .isInstanceOf(InvalidTaskException.class)
                .hasMessage("payload nests objects and arrays deeper than 200 levels (the nesting limit)");
        assertThat(snapshot()).isEqualTo(before);
        String atLimit = "{\"a\":" + "[".repeat(199) + "]".repeat(199) + "}";
        assertThat(roomy.enqueue(TaskClient.Enqueue.of("noop", atLimit))).isPositive();
    }

    // ---------------------------------------------------------------- numbers and times

    @ParameterizedTest
    @ValueSource(ints = {-1001, 1001, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void priorityOutOfRangeIsRefused(int p) {
        refused(TaskClient.Enqueue.of("noop", "{}").priority(p), "priority",
                "priority=" + p + " must be from -1000 to 1000 (lower runs first)");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, -1, 1001, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void maxAttemptsOutOfRangeIsRefused(int n) {
        refused(TaskClient.Enqueue.of("noop", "{}").maxAttempts(n), "max_attempts", "max_attempts=" + n + " must be from 1 to 1000");
    }

    @Test
    void runAtFarInTheFutureIsRefused() {
        OffsetDateTime at = OffsetDateTime.now(ZoneOffset.UTC).plusYears(10).withNano(0);
        refused(TaskClient.Enqueue.of("noop", "{}").runAt(at), "run_at", "run_at=" + at + " is more than 1830 days ahead");
    }

    @Test
    void runAtFarInThePastIsRefused() {
        OffsetDateTime at = OffsetDateTime.now(ZoneOffset.UTC).minusYears(2).withNano(0);
        refused(TaskClient.Enqueue.of("noop", "{}").runAt(at), "run_at",
                "run_at=" + at + " is more than 366 days in the past; omit it to run now");
    }

    @Test
    void runAtAnHourAgoIsAcceptedAndDueNow() {
        long id = client.enqueue(TaskClient.Enqueue.of("noop", "{}").runAt(OffsetDateTime.now(ZoneOffset.UTC).minusHours(1)));
        assertThat(db.count("tasks WHERE id = " + id + " AND run_at <= now()")).isOne();
    }

    // ---------------------------------------------------------------- names

    @ParameterizedTest
    @ValueSource(strings = {"x'; DROP TABLE tasks;--", "a\"b", "a;b", "naïve", "日本", "", " ", "a b", "-leading-dash",
            "pgdispatch_wakeup; NOTIFY pgdispatch_wakeup", "UNLISTEN *", "line\nbreak", "$1", "a\u0000b"})
    void hostileKindIsRefusedNamingTheRule(String kind) {
        refused(TaskClient.Enqueue.of(kind, "{}"), "kind", "kind=" + shown(kind)
                + " must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
    }

    @ParameterizedTest
    @ValueSource(strings = {"x'; DROP TABLE tasks;--", "a\"b", "q;LISTEN x", "naïve", "Ω", "", "a b", ".hidden",
            "pgdispatch_wakeup\"; NOTIFY \"x"})
    void hostileQueueIsRefusedNamingTheRule(String queue) {
        refused(TaskClient.Enqueue.of("noop", "{}").queue(queue), "queue", "queue=" + shown(queue)
                + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
    }

    @Test
    void overlongNamesAreRefused() {
        refused(TaskClient.Enqueue.of("k".repeat(201), "{}"), "kind", "kind='" + "k".repeat(60) + "…'"
                + " must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        refused(TaskClient.Enqueue.of("noop", "{}").queue("q".repeat(101)), "queue", "queue='" + "q".repeat(60) + "…'"
                + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
    }

    @Test
    void missingKindIsRefused() {
        refused(TaskClient.Enqueue.of(null, "{}"), "kind",
                "kind=(missing) must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
    }

    @Test
    void blankOrOverlongIdempotencyKeyIsRefused() {
        refused(TaskClient.Enqueue.of("noop", "{}").idempotencyKey("  "), "idempotency_key", "idempotency_key must be 1-200 characters, got 2");
        refused(TaskClient.Enqueue.of("noop", "{}").idempotencyKey("k".repeat(201)), "idempotency_key",
                "idempotency_key must be 1-200 characters, got 201");
    }

    @Test
    void quotesAndSqlInsidePayloadValuesAreStoredVerbatimAsData() {
        String payload = "{\"q\":\"x'); DROP TABLE tasks;--\",\"c\":\"pgdispatch_wakeup; NOTIFY a\"}";
        long id = client.enqueue(TaskClient.Enqueue.of("noop", payload));
        assertThat(db.rows("SELECT payload->>'q' AS q, payload->>'c' AS c FROM tasks WHERE id = " + id).get(0))
                .containsEntry("q", "x'); DROP TABLE tasks;--").containsEntry("c", "pgdispatch_wakeup; NOTIFY a");
        assertThat(db.count("tasks")).isEqualTo(3);
    }

    // ---------------------------------------------------------------- unknown kind

    @Test
    void unknownKindIsAcceptedAndReportedWhileNoLiveNodeHandlesIt() {
        new NodeStore(db.database().dataSource()).register("node-a", "host", 1, "test", List.of("default"),
                List.of("noop", "echo"), Duration.ofMinutes(1), false, true);
        long id = client.enqueue(TaskClient.Enqueue.of("no-such-kind", "{}"));

        assertThat(db.count("tasks WHERE id = " + id + " AND status = 'pending'")).isOne();
        assertThat(new TaskQueries(db.database().dataSource()).pendingWithoutHandler(Duration.ofMinutes(1)))
                .containsExactly(Map.entry("echo", 1L), Map.entry("no-such-kind", 1L)); // echo waits in a queue node-a does not serve

        var u = db.url();
        Env.override(Map.of("DATABASE_URL", "jdbc:postgresql://" + u.host() + ":" + u.port() + "/" + u.database() + "?user=" + u.user(),
                "TASK_NODE_TIMEOUT_S", "60"));
        StringWriter out = new StringWriter();
        assertThat(Main.execute(new PrintWriter(out), new PrintWriter(new StringWriter()), "status")).isEqualTo(Main.OK);
        assertThat(out.toString()).contains("WARNING pending tasks whose kind no live node handles: {echo=1, no-such-kind=1}");
    }

    private static String shown(String s) {
        String cut = s.length() > 60 ? s.substring(0, 60) + "…" : s;
        return "'" + cut.replace("\n", "\\n") + "'";
    }
}

package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static pgdispatch.ops.ReapCommandTest.assertUsage;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class TasksCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final ObjectMapper JSON = new ObjectMapper();

    private long pending;
    private long running;
    private long succeeded;
    private long failed;
    private long otherQueue;

    @BeforeEach
    void rows() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        pending = insert("INSERT INTO tasks (kind, payload) VALUES ('echo', '{\"n\": 1}')");
        running = insert("INSERT INTO tasks (kind, status, owner_id, lease_token, lease_expires_at, last_heartbeat_at, attempts)"
                + " VALUES ('sleep', 'running', 'node-a', 2, now() + interval '5 minutes', now(), 1)");
        succeeded = insert("INSERT INTO tasks (kind, status, attempts, result, finished_at) VALUES ('noop', 'succeeded', 1, '{\"ok\": true}', now())");
        failed = insert("INSERT INTO tasks (kind, status, attempts, max_attempts, last_error, finished_at, owner_id)"
                + " VALUES ('fail', 'failed', 2, 2, 'boom', now(), 'node-a')");
        otherQueue = insert("INSERT INTO tasks (queue, kind) VALUES ('mail', 'noop')");
        db.exec("INSERT INTO task_events (task_id, event, owner_id, lease_token, detail) VALUES (" + failed
                + ", 'claimed', 'node-a', 1, '{\"attempt\": 1}'), (" + failed + ", 'failed', 'node-a', 1, '{\"error\": \"boom\"}')");
    }

    private long insert(String sql) {
        return ((Number) db.rows(sql + " RETURNING id").get(0).get("id")).longValue();
    }

    private Map<String, Object> row(long id) {
        return db.rows("SELECT status, attempts, owner_id, last_error FROM tasks WHERE id = " + id).get(0);
    }

    private List<String> events(long id) {
        return db.rows("SELECT event FROM task_events WHERE task_id = " + id + " ORDER BY id").stream()
                .map(r -> (String) r.get("event")).toList();
    }

    @Nested
    class ListTasks {
        @Test
        void listsNewestFirstWithStatusAndQueueFilters() {
            Cli.Run all = Cli.run(db.url(), "tasks", "list");
            assertThat(all.code()).as(all.err()).isZero();
            assertThat(all.out().lines().skip(1).map(l -> l.split("\\s+")[0]).toList())
                    .containsExactly("" + otherQueue, "" + failed, "" + succeeded, "" + running, "" + pending);

            Cli.Run failedOnly = Cli.run(db.url(), "tasks", "list", "--status", "failed");
            assertThat(failedOnly.out().lines().skip(1).toList()).singleElement().asString()
                    .startsWith(failed + " ").contains("fail", "failed", "2/2", "node-a", "boom");

            Cli.Run mail = Cli.run(db.url(), "tasks", "list", "--queue", "mail", "--limit", "1");
            assertThat(mail.out().lines().skip(1).toList()).singleElement().asString().startsWith(otherQueue + " ");

            assertThat(Cli.run(db.url(), "tasks", "list", "--status", "cancelled").out()).isEqualTo("(no tasks with status cancelled)\n");
        }

        @Test
        void jsonIsAnArrayOfTasksWithPayloadsAsJson() throws Exception {
            Cli.Run r = Cli.run(db.url(), "tasks", "list", "--status", "pending", "--queue", "default", "--json");

            assertThat(r.code()).as(r.err()).isZero();
            JsonNode j = JSON.readTree(r.out());
            assertThat(j.isArray()).isTrue();
            assertThat(j).hasSize(1);
            assertThat(j.get(0).get("id").asLong()).isEqualTo(pending);
            assertThat(j.get(0).get("payload").get("n").asInt()).isEqualTo(1);
            assertThat(j.get(0).get("run_at").asText()).endsWith("Z");
        }

        @Test
        void anUnknownStatusIsAUsageErrorListingTheValidOnes() {
            assertUsage(Cli.run(db.url(), "tasks", "list", "--status", "done"),
                    "pgdispatch: --status=done is not a task status; valid: waiting, pending, running, succeeded, failed, cancelled, quarantined, compensating, compensated");
            assertUsage(Cli.run(db.url(), "tasks", "list", "--limit", "0"),
                    "pgdispatch: --limit=0 must be a positive whole number (at most 10000)");
        }
    }

    @Nested
    class Show {
        @Test
        void printsTheRowAndItsEvents() {
            Cli.Run r = Cli.run(db.url(), "tasks", "show", "" + failed);

            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).startsWith("task " + failed + "\n").contains("status             failed", "last_error         boom",
                    "EVENTS (2)");
            assertThat(r.out().lines().filter(l -> l.contains(" claimed ") || l.contains(" failed ")).toList()).hasSize(2);
        }

        @Test
        void jsonHoldsTheTaskAndItsEventsInOrder() throws Exception {
            Cli.Run r = Cli.run(db.url(), "tasks", "show", "" + failed, "--json");

            JsonNode j = JSON.readTree(r.out());
            assertThat(j.get("task").get("status").asText()).isEqualTo("failed");
            assertThat(j.get("events")).extracting(e -> e.get("event").asText()).containsExactly("claimed", "failed");
            assertThat(j.get("events").get(1).get("detail").get("error").asText()).isEqualTo("boom");
            assertThat(j.get("events").get(0).get("task_id").asLong()).isEqualTo(failed);
        }

        @Test
        void anUnknownIdIsAFailureAndABadIdAUsageError() {
            Cli.Run r = Cli.run(db.url(), "tasks", "show", "999999");
            assertThat(r.code()).isEqualTo(Main.FAILURE);
            assertThat(r.errLines()).containsExactly("pgdispatch: task 999999 not found");

            assertUsage(Cli.run(db.url(), "tasks", "show", "abc"), "pgdispatch: ID=abc must be a positive whole number");
            assertThat(Cli.run(db.url(), "tasks", "show").errLines()).singleElement().asString()
                    .startsWith("pgdispatch: Missing required parameter: 'ID'");
        }
    }

    @Nested
    class Retry {
        @Test
        void retryOfAFailedTaskStartsAFreshAttemptSeriesAndRecordsIt() {
            Cli.Run r = Cli.run(db.url(), "tasks", "retry", "" + failed);

            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).isEqualTo("task " + failed + ": failed -> pending (attempts reset; event retried_by_operator)\n");
            assertThat(row(failed)).containsEntry("status", "pending").containsEntry("attempts", 0).containsEntry("owner_id", null);
            assertThat(events(failed)).containsExactly("claimed", "failed", "retried_by_operator");
        }

        @Test
        void retryOfOneTaskKeepsTheOperatorsReasonInItsEvent() {
            Cli.Run r = Cli.run(db.url(), "tasks", "retry", "" + failed, "--reason", "upstream fixed");

            assertThat(r.code()).as(r.err()).isZero();
            assertThat(db.count("task_events WHERE task_id = " + failed
                    + " AND event = 'retried_by_operator' AND detail->>'reason' = 'upstream fixed'")).isOne();
        }

        @Test
        void retryOfALiveTaskIsRefusedNamingItsStatus() {
            Cli.Run r = Cli.run(db.url(), "tasks", "retry", "" + running);

            assertThat(r.code()).isEqualTo(Main.FAILURE);
            assertThat(r.errLines()).containsExactly("pgdispatch: task " + running + " is running: retry is allowed only for"
                    + " finished tasks (succeeded, failed, cancelled, quarantined, compensated); cancel a live one first");
            assertThat(row(running)).containsEntry("status", "running").containsEntry("owner_id", "node-a");
            assertThat(events(running)).isEmpty();
        }

        @Test
        void retryOfAnUnknownTaskIsAFailure() {
            Cli.Run r = Cli.run(db.url(), "tasks", "retry", "424242");
            assertThat(r.code()).isEqualTo(Main.FAILURE);
            assertThat(r.errLines()).containsExactly("pgdispatch: task 424242 not found");
        }
    }

    @Nested
    class Cancel {
        @Test
        void cancelsAPendingTaskWithTheReason() {
            Cli.Run r = Cli.run(db.url(), "tasks", "cancel", "" + pending, "--reason", "duplicate order");

            assertThat(r.code()).as(r.err()).isZero();
            assertThat(row(pending)).containsEntry("status", "cancelled").containsEntry("last_error", "duplicate order");
            assertThat(events(pending)).containsExactly("cancelled");
        }

        @Test
        void cancelOfAFinishedTaskIsRefusedNamingItsStatus() {
            Cli.Run r = Cli.run(db.url(), "tasks", "cancel", "" + succeeded);

            assertThat(r.code()).isEqualTo(Main.FAILURE);
            assertThat(r.errLines()).containsExactly("pgdispatch: task " + succeeded
                    + " is succeeded: cancel is allowed only for waiting, pending or running tasks outside their compensation");
            assertThat(row(succeeded)).containsEntry("status", "succeeded");
            assertThat(events(succeeded)).isEmpty();
        }

        @Test
        void cancelOfAnUnknownTaskIsAFailure() {
            assertThat(Cli.run(db.url(), "tasks", "cancel", "424242").errLines()).containsExactly("pgdispatch: task 424242 not found");
        }
    }

    @Nested
    class Quarantine {
        @Test
        void quarantinesARunningTaskWithTheReason() {
            Cli.Run r = Cli.run(db.url(), "tasks", "quarantine", "" + running, "--reason", "crashes the node");

            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).isEqualTo("task " + running + ": running -> quarantined (event quarantined)\n");
            assertThat(row(running)).containsEntry("status", "quarantined")
                    .containsEntry("last_error", "quarantined by operator: crashes the node");
            assertThat(events(running)).containsExactly("quarantined");
        }

        @Test
        void quarantineOfASucceededTaskIsRefusedNamingItsStatus() {
            Cli.Run r = Cli.run(db.url(), "tasks", "quarantine", "" + succeeded);

            assertThat(r.code()).isEqualTo(Main.FAILURE);
            assertThat(r.errLines()).containsExactly("pgdispatch: task " + succeeded
                    + " is succeeded: quarantine is allowed only for waiting, pending, running, failed or compensating tasks");
            assertThat(row(succeeded)).containsEntry("status", "succeeded");
        }

        @Test
        void aNegativeIdIsAUsageError() {
            assertUsage(Cli.run(db.url(), "tasks", "quarantine", "-3"), "pgdispatch: ID=-3 must be a positive whole number");
        }
    }

    @Nested
    class Bulk {
        @Test
        void cancelsEveryPendingTaskOfAKindInOneGoWithDryRunFirst() throws Exception {
            long second = insert("INSERT INTO tasks (kind) VALUES ('echo')");

            Cli.Run dry = Cli.run(db.url(), "tasks", "cancel", "--kind", "echo", "--dry-run");
            assertThat(dry.code()).as(dry.err()).isZero();
            assertThat(dry.out()).startsWith("cancel --dry-run: 2 task(s) would change (nothing changed)\n")
                    .containsPattern("(?m)^" + pending + "\\s+default\\s+echo\\s+pending$");
            assertThat(row(pending)).containsEntry("status", "pending");

            Cli.Run r = Cli.run(db.url(), "tasks", "cancel", "--kind", "echo", "--reason", "bad deploy", "--by", "alice", "--json");
            assertThat(r.code()).as(r.err()).isZero();
            JsonNode j = JSON.readTree(r.out());
            assertThat(j.get("count").asInt()).isEqualTo(2);
            assertThat(j.get("dry_run").asBoolean()).isFalse();
            assertThat(j.get("tasks").findValuesAsText("id")).containsExactly("" + pending, "" + second);
            assertThat(row(pending)).containsEntry("status", "cancelled").containsEntry("last_error", "bad deploy");
            assertThat(db.rows("SELECT detail->>'actor' AS a, detail->>'reason' AS r FROM task_events WHERE task_id = " + second).get(0))
                    .containsEntry("a", "alice").containsEntry("r", "bad deploy");
            assertThat(row(running)).containsEntry("status", "running");
        }

        @Test
        void retriesFailedTasksByStatusAndSaysWhenTheLimitWasReached() {
            long another = insert("INSERT INTO tasks (kind, status, attempts, last_error, finished_at) VALUES ('fail', 'failed', 1, 'x', now())");

            Cli.Run r = Cli.run(db.url(), "tasks", "retry", "--status", "failed", "--limit", "1", "--reason", "fixed");

            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.out()).startsWith("retry: 1 task(s) changed, each with its event\n")
                    .endsWith("limit 1 reached: more tasks may match; run the command again\n");
            assertThat(row(failed)).containsEntry("status", "pending");
            assertThat(row(another)).containsEntry("status", "failed");
        }

        @Test
        void badFiltersAreUsageErrorsAndChangeNothing() {
            assertUsage(Cli.run(db.url(), "tasks", "cancel"),
                    "pgdispatch: give a task ID, or at least one of --status, --kind, --queue, --older-than");
            assertUsage(Cli.run(db.url(), "tasks", "cancel", "" + pending, "--kind", "echo"),
                    "pgdispatch: give a task ID or filter options (--status, --kind, --queue, --older-than), not both");
            assertUsage(Cli.run(db.url(), "tasks", "retry", "--status", "pending"),
                    "pgdispatch: --status=pending: retry applies only to succeeded, failed, cancelled, quarantined");
            assertUsage(Cli.run(db.url(), "tasks", "quarantine", "--older-than", "soon"),
                    "pgdispatch: --older-than=soon must be a duration such as 90s, 15m, 2h, 7d or PT15M");
            assertUsage(Cli.run(db.url(), "tasks", "cancel", "--kind", "echo", "--limit", "0"),
                    "pgdispatch: --limit=0 must be a positive whole number (at most 100000)");
            assertThat(db.count("task_events WHERE event <> 'claimed' AND event <> 'failed'")).isZero();
        }

        @Test
        void listFiltersByKind() {
            Cli.Run r = Cli.run(db.url(), "tasks", "list", "--kind", "sleep");
            assertThat(r.out().lines().skip(1).toList()).singleElement().asString().startsWith(running + " ");
            assertThat(Cli.run(db.url(), "tasks", "list", "--kind", "nope").out()).isEqualTo("(no tasks of kind nope)\n");
        }
    }

    @Test
    void tasksWithoutASubcommandIsAUsageError() {
        Cli.Run r = Cli.run(db.url(), "tasks");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).singleElement().asString()
                .startsWith("pgdispatch: a subcommand is required: list, show, retry, cancel or quarantine");
    }
}

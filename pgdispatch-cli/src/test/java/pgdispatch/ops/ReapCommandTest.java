package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class ReapCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private long expired;
    private long budgetUsed;
    private long deadOwner;
    private long healthy;
    private long pending;

    @BeforeEach
    void rows() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        db.exec("""
                INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version, queues, kinds, last_seen_at)
                VALUES ('node-live', gen_random_uuid(), 'h1', 11, '0.1.0', '{default}', '{noop}', now()),
                       ('node-dead', gen_random_uuid(), 'h2', 22, '0.1.0', '{default}', '{noop}', now() - interval '10 minutes')
                """);
        expired = running("node-gone", "now() - interval '1 minute'", "now() - interval '2 minutes'", 0);
        budgetUsed = running("node-gone", "now() - interval '1 minute'", "now() - interval '2 minutes'", 3);
        deadOwner = running("node-dead", "now() + interval '5 minutes'", "now() - interval '10 minutes'", 1);
        healthy = running("node-live", "now() + interval '5 minutes'", "now()", 0);
        pending = id(db.rows("INSERT INTO tasks (kind) VALUES ('noop') RETURNING id"));
    }

    private long running(String owner, String leaseExpires, String heartbeat, int requeues) {
        return id(db.rows("INSERT INTO tasks (kind, status, owner_id, lease_token, lease_expires_at, last_heartbeat_at,"
                + " attempts, requeue_count, started_at) VALUES ('noop', 'running', '" + owner + "', 4, " + leaseExpires
                + ", " + heartbeat + ", 1, " + requeues + ", now() - interval '20 minutes') RETURNING id"));
    }

    private static long id(List<Map<String, Object>> rows) {
        return ((Number) rows.get(0).get("id")).longValue();
    }

    /** Every row of the three tables, each as PostgreSQL's text form of the whole row (every column compared). */
    private List<List<Map<String, Object>>> everything() {
        return List.of(db.rows("SELECT t::text AS row FROM tasks t ORDER BY id"),
                db.rows("SELECT e::text AS row FROM task_events e ORDER BY id"),
                db.rows("SELECT n::text AS row FROM dispatcher_nodes n ORDER BY node_id"));
    }

    @Test
    void dryRunListsEachStaleTaskWithItsActionAndReasonAndChangesNoRow() {
        var before = everything();

        Cli.Run r = Cli.run(db.url(), "reap", "--dry-run");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(everything()).isEqualTo(before);
        assertThat(r.out()).contains("dry run: 3 stale running task(s): 2 would be requeued, 1 quarantined; nothing changed");
        assertThat(line(r.out(), expired)).contains("node-gone").contains("requeue").contains("lease expired at");
        assertThat(line(r.out(), budgetUsed)).contains("quarantine");
        assertThat(line(r.out(), deadOwner)).contains("node-dead").contains("requeue").contains("owner node node-dead not seen since");
        assertThat(r.out()).doesNotContain("\n" + healthy + " ").doesNotContain("\n" + pending + " ");
    }

    @Test
    void dryRunJsonIsValidAndChangesNoRow() throws Exception {
        var before = everything();

        Cli.Run r = Cli.run(db.url(), "reap", "--dry-run", "--json", "--max-requeue", "0");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(everything()).isEqualTo(before);
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("dry_run").asBoolean()).isTrue();
        assertThat(j.get("max_requeue").asInt()).isZero();
        assertThat(j.get("quarantine").asInt()).isEqualTo(3);
        assertThat(j.get("tasks")).extracting(t -> t.get("id").asLong()).containsExactly(expired, budgetUsed, deadOwner);
        assertThat(j.get("tasks").get(0).get("action").asText()).isEqualTo("quarantine");
        assertThat(j.get("tasks").get(0).get("previous_owner").asText()).isEqualTo("node-gone");
    }

    @Test
    void runRequeuesWithinTheBudgetQuarantinesBeyondItAndRecordsEvents() {
        Cli.Run r = Cli.run(db.url(), "reap");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("reaped 3 stale running task(s): 2 requeued, 1 quarantined");
        assertThat(status(expired)).containsEntry("status", "pending").containsEntry("owner_id", null).containsEntry("requeue_count", 1);
        assertThat(status(deadOwner)).containsEntry("status", "pending").containsEntry("requeue_count", 2);
        assertThat(status(budgetUsed)).containsEntry("status", "quarantined").containsEntry("requeue_count", 3);
        assertThat((String) status(budgetUsed).get("last_error")).startsWith("quarantined: requeue budget 3 exhausted");
        assertThat(status(healthy)).containsEntry("status", "running").containsEntry("owner_id", "node-live");
        assertThat(status(pending)).containsEntry("status", "pending");
        assertThat(db.rows("SELECT task_id, event FROM task_events ORDER BY task_id")).containsExactly(
                Map.of("task_id", expired, "event", "requeued"), Map.of("task_id", budgetUsed, "event", "quarantined"),
                Map.of("task_id", deadOwner, "event", "requeued"));

        Cli.Run again = Cli.run(db.url(), "reap");
        assertThat(again.out()).contains("reaped 0 stale running task(s)");
    }

    @Test
    void overridesApplyToTheRun() {
        // a stale limit of 60 s (renewal every 30 s) makes the healthy-looking heartbeat of deadOwner's row count too;
        // batch 1 makes the reaper loop until a short batch
        Cli.Run r = Cli.run(db.url(), "reap", "--stale-seconds", "60", "--max-requeue", "5", "--batch", "1", "--json");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("\"requeue\" : 3", "\"quarantine\" : 0", "\"batch\" : 1", "\"stale_seconds\" : 60");
        assertThat(db.count("tasks WHERE status = 'pending'")).isEqualTo(4);
    }

    @Test
    void badOverridesAreUsageErrorsNamingFlagValueAndRuleAndChangeNothing() {
        var before = everything();
        assertUsage(Cli.run(db.url(), "reap", "--batch", "0"), "pgdispatch: --batch=0 must be a positive whole number (at most 100000)");
        assertUsage(Cli.run(db.url(), "reap", "--stale-seconds", "ten"),
                "pgdispatch: --stale-seconds=ten must be a positive whole number (at most 31536000)");
        assertUsage(Cli.run(db.url(), "reap", "--max-requeue", "-1"), "pgdispatch: --max-requeue=-1 must be a whole number from 0 to 1000");
        assertUsage(Cli.run(db.url(), "reap", "--stale-seconds", "30"),
                "pgdispatch: --stale-seconds=30 must be longer than TASK_RENEW_S=30 (a healthy task's heartbeat is up to one renewal interval old)");
        assertUsage(Cli.run(db.url(), "reap", "--batch", "x", "--max-requeue", "y"),
                "pgdispatch: --max-requeue=y must be a whole number from 0 to 1000; --batch=x must be a positive whole number (at most 100000)");
        assertThat(Cli.run(db.url(), "reap", "--nonsense").err()).startsWith("pgdispatch: Unknown option: '--nonsense'");
        assertThat(everything()).isEqualTo(before);
    }

    static void assertUsage(Cli.Run r, String line) {
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).containsExactly(line);
        assertThat(r.out()).isEmpty();
    }

    private Map<String, Object> status(long id) {
        return db.rows("SELECT status, owner_id, requeue_count, last_error FROM tasks WHERE id = " + id).get(0);
    }

    private static String line(String out, long id) {
        return out.lines().filter(l -> l.startsWith(id + " ")).findFirst().orElseThrow(() -> new AssertionError("no line for task " + id + " in:\n" + out));
    }
}

package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.testing.TestDatabase;

class StatusCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeAll
    static void rows() {
        db.exec("""
                INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version, queues, kinds, last_seen_at)
                VALUES ('node-a', gen_random_uuid(), 'h1', 11, '0.1.0', '{default}', '{noop}', now())
                """);
        db.exec("INSERT INTO tasks (kind, run_at) VALUES ('noop', now() - interval '30 seconds'), ('noop', now())");
        db.exec("INSERT INTO tasks (kind, status, owner_id, lease_token, lease_expires_at, last_heartbeat_at, attempts)"
                + " VALUES ('noop', 'running', 'node-a', 3, now() + interval '100 seconds', now(), 1)");
        db.exec("INSERT INTO tasks (queue, kind, status, finished_at, requeue_count) VALUES ('mail', 'send', 'quarantined', now(), 3)");
    }

    @Test
    void tableShowsQueuesRunningLeasesAndNodes() {
        Cli.Run r = Cli.run(db.url(), "status");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("pgdispatch status  database=postgresql://postgres@");
        assertThat(r.out().lines().filter(l -> l.startsWith("default ")).findFirst().orElseThrow().split("\\s+"))
                .startsWith("default", "0", "2", "1", "0", "0", "0", "0");
        assertThat(r.out().lines().filter(l -> l.startsWith("mail ")).findFirst().orElseThrow().split("\\s+"))
                .containsExactly("mail", "0", "0", "0", "0", "0", "0", "1", "0", "0", "0.0", "0", "3");
        assertThat(r.out()).contains("RUNNING (soonest lease expiry first, 1 shown)").containsPattern("node-a\\s+LIVE");
    }

    @Test
    void jsonParsesWithCountsLagAndNodes() throws Exception {
        Cli.Run r = Cli.run(db.url(), "status", "--json");

        assertThat(r.code()).as(r.err()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("schema_version").asText()).isEqualTo(pgdispatch.testing.TestDatabase.latestVersion());
        JsonNode def = j.get("queues").get(0);
        assertThat(def.get("queue").asText()).isEqualTo("default");
        assertThat(def.get("counts").get("pending").asInt()).isEqualTo(2);
        assertThat(def.get("counts").get("running").asInt()).isEqualTo(1);
        assertThat(def.get("lag_seconds").asDouble()).isGreaterThanOrEqualTo(30.0);
        // snake_case like every other key, as docs/CLI.md says (issue 11 item 10: they were camelCase)
        JsonNode running = j.get("running").get(0);
        assertThat(running.get("lease_seconds_left").asDouble()).isBetween(0.0, 100.0);
        assertThat(running.get("heartbeat_age_seconds").isNumber()).isTrue();
        assertThat(running.get("lease_token").asLong()).isPositive();
        java.util.List<String> keys = new java.util.ArrayList<>();
        running.fieldNames().forEachRemaining(keys::add);
        assertThat(keys).containsExactly("id", "queue", "kind", "owner", "lease_token", "attempt", "lease_seconds_left",
                "heartbeat_age_seconds");
        // readiness per node, as the node stored it (null = ready)
        assertThat(j.get("nodes").get(0).has("ready")).isTrue();
        assertThat(j.get("nodes").get(0).has("health")).isTrue();
        JsonNode leases = j.get("leases").get(0); // issue 14: lease figures by kind
        assertThat(leases.get("running").asInt()).isEqualTo(1);
        assertThat(leases.get("stale").asInt()).isZero();
        assertThat(leases.get("silence_max_seconds").asDouble()).isGreaterThanOrEqualTo(0.0);
        assertThat(j.get("nodes").get(0).get("node_id").asText()).isEqualTo("node-a");
        assertThat(j.get("nodes").get(0).get("alive").asBoolean()).isTrue();
    }

    @Test
    void neitherTableNorJsonShowsThePassword() {
        DatabaseUrl withPassword = new DatabaseUrl(db.url().host(), db.url().port(), db.url().database(), "postgres",
                "s3cret-pw", db.url().params());
        Cli.Run table = Cli.run(withPassword, "status");
        Cli.Run json = Cli.run(withPassword, "status", "--json");
        assertThat(table.code()).as(table.err()).isZero();
        assertThat(table.out() + table.err() + json.out() + json.err()).doesNotContain("s3cret-pw").contains("postgres:***@");
    }

    @Test
    void badOptionsAndBadConfigurationAreUsageErrors() {
        ReapCommandTest.assertUsage(Cli.run(db.url(), "status", "--running", "-1"), "pgdispatch: --running=-1 must be from 0 to 10000");
        ReapCommandTest.assertUsage(Cli.run(Map.of("TASK_LEASE_S", "0"), db.url(), "status"),
                "pgdispatch: TASK_LEASE_S=0 must be a positive whole number of seconds (at most 31536000)");
    }
}

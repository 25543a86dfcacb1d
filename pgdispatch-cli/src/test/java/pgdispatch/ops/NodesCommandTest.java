package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class NodesCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void rows() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        db.exec("""
                INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version, queues, kinds, last_seen_at, stopped_at)
                VALUES ('node-live', gen_random_uuid(), 'h1', 11, '0.1.0', '{default,mail}', '{noop}', now(), NULL),
                       ('node-dead', gen_random_uuid(), 'h2', 22, '0.1.0', '{default}', '{noop}', now() - interval '10 minutes', NULL),
                       ('node-stopped', gen_random_uuid(), 'h3', 33, '0.1.0', '{default}', '{noop}', now(), now())
                """);
        db.exec("INSERT INTO tasks (kind, status, owner_id, lease_token, lease_expires_at) VALUES"
                + " ('noop', 'running', 'node-live', 1, now() + interval '1 minute'),"
                + " ('noop', 'running', 'node-dead', 1, now() - interval '1 minute')");
    }

    @Test
    void listShowsStateLastSeenQueuesAndRunningTasks() {
        Cli.Run r = Cli.run(db.url(), "nodes", "list");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().lines().filter(l -> l.startsWith("node-")).toList()).satisfiesExactly(
                l -> assertThat(l).startsWith("node-dead ").contains(" dead ", " h2 ", "default"),
                l -> assertThat(l).startsWith("node-live ").contains(" live ", " h1 ", "default,mail"),
                l -> assertThat(l).startsWith("node-stopped ").contains(" stopped "));
        assertThat(r.out()).contains("(dead = not seen for TASK_NODE_TIMEOUT_S=70)");
    }

    @Test
    void listJsonIsValidWithRunningCounts() throws Exception {
        Cli.Run r = Cli.run(db.url(), "nodes", "list", "--json");

        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j).extracting(n -> n.get("node_id").asText() + ":" + n.get("state").asText() + ":" + n.get("running_tasks").asInt())
                .containsExactly("node-dead:dead:1", "node-live:live:1", "node-stopped:stopped:0");
        assertThat(j.get(1).get("queues")).extracting(JsonNode::asText).containsExactly("default", "mail");
    }

    @Test
    void forgetDeletesADeadNodeAndSaysWhatItStillOwns() {
        Cli.Run r = Cli.run(db.url(), "nodes", "forget", "node-dead");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith("node node-dead forgotten (was dead)\nit still owns 1 running task(s)");
        assertThat(db.count("dispatcher_nodes WHERE node_id = 'node-dead'")).isZero();
        assertThat(Cli.run(db.url(), "nodes", "forget", "node-stopped").code()).isZero();
        assertThat(db.count("dispatcher_nodes")).isEqualTo(1);
    }

    @Test
    void forgetRefusesALiveNode() {
        Cli.Run r = Cli.run(db.url(), "nodes", "forget", "node-live");

        assertThat(r.code()).isEqualTo(Main.FAILURE);
        assertThat(r.errLines()).singleElement().asString().startsWith("pgdispatch: node node-live is live (last seen ")
                .endsWith("within TASK_NODE_TIMEOUT_S=70; host h1 pid 11): stop it first");
        assertThat(db.count("dispatcher_nodes WHERE node_id = 'node-live'")).isEqualTo(1);
    }

    @Test
    void forgetOfAnUnknownNodeIsAFailureAndWithoutIdAUsageError() {
        Cli.Run r = Cli.run(db.url(), "nodes", "forget", "node-x");
        assertThat(r.code()).isEqualTo(Main.FAILURE);
        assertThat(r.errLines()).containsExactly("pgdispatch: node node-x not found");

        Cli.Run noId = Cli.run(db.url(), "nodes", "forget");
        assertThat(noId.code()).isEqualTo(Main.USAGE);
        assertThat(noId.errLines()).singleElement().asString().startsWith("pgdispatch: Missing required parameter: 'ID'");
    }
}

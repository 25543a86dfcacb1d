package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static pgdispatch.ops.ReapCommandTest.assertUsage;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class QueuesCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeEach
    void rows() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, dispatcher_queues");
        db.exec("INSERT INTO tasks (queue, kind) VALUES ('mail', 'send'), ('mail', 'send'), ('default', 'noop')");
    }

    @Test
    void pauseListResumeFromTheCommandLine() throws Exception {
        Cli.Run pause = Cli.run(db.url(), "queues", "pause", "mail", "--reason", "SMTP relay down", "--by", "alice");
        assertThat(pause.code()).as(pause.err()).isZero();
        assertThat(pause.out()).isEqualTo("queue mail paused (SMTP relay down)\n");

        Cli.Run list = Cli.run(db.url(), "queues", "list");
        assertThat(list.out().lines().filter(l -> l.startsWith("mail ")).findFirst().orElseThrow().split("\\s+"))
                .startsWith("mail", "paused", "2", "0", "-").endsWith("alice", "SMTP", "relay", "down");
        assertThat(list.out()).containsPattern("(?m)^default\\s+active\\s+1\\s+0");

        JsonNode j = JSON.readTree(Cli.run(db.url(), "queues", "list", "--json").out());
        assertThat(j.get(1).get("queue").asText()).isEqualTo("mail");
        assertThat(j.get(1).get("paused").asBoolean()).isTrue();
        assertThat(j.get(1).get("pending").asInt()).isEqualTo(2);

        Cli.Run status = Cli.run(db.url(), "status", "--json");
        assertThat(JSON.readTree(status.out()).get("paused_queues").get(0).asText()).isEqualTo("mail");
        assertThat(Cli.run(db.url(), "status").out()).contains("PAUSED QUEUES (no node claims from them; see: pgdispatch queues list) mail");

        Cli.Run again = Cli.run(db.url(), "queues", "pause", "mail");
        assertThat(again.code()).isZero();
        assertThat(again.out()).startsWith("queue mail was already paused (since ").endsWith(" by alice); nothing changed\n");

        Cli.Run resume = Cli.run(db.url(), "queues", "resume", "mail", "--json");
        assertThat(resume.code()).as(resume.err()).isZero();
        JsonNode r = JSON.readTree(resume.out());
        assertThat(r.get("paused").asBoolean()).isFalse();
        assertThat(r.get("changed").asBoolean()).isTrue();
        assertThat(db.count("dispatcher_queues WHERE paused")).isZero();
    }

    @Test
    void aBadQueueNameIsAUsageError() {
        assertUsage(Cli.run(db.url(), "queues", "pause", "a b"),
                "pgdispatch: queue='a b' must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
    }
}

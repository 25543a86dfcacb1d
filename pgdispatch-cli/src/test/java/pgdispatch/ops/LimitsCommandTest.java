package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static pgdispatch.ops.ReapCommandTest.assertUsage;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class LimitsCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, concurrency_limits");
        db.exec("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts, lease_expires_at)"
                + " VALUES ('report', 'running', 'node-a', 1, 1, now() + interval '1 minute')");
    }

    @Test
    void setListChangeAndClearALimit() throws Exception {
        Cli.Run set = Cli.run(db.url(), "limits", "set", "--kind", "report", "3", "--by", "alice");
        assertThat(set.code()).as(set.err()).isZero();
        assertThat(set.out()).isEqualTo("limit kind report: at most 3 running (1 running now)\n");
        assertThat(Cli.run(db.url(), "limits", "set", "--queue", "mail", "0").code()).isZero();

        Cli.Run list = Cli.run(db.url(), "limits", "list");
        assertThat(list.out()).containsPattern("(?m)^kind\\s+report\\s+3\\s+1\\s+\\S+\\s+alice$")
                .containsPattern("(?m)^queue\\s+mail\\s+0\\s+0\\s");
        JsonNode j = new ObjectMapper().readTree(Cli.run(db.url(), "limits", "list", "--json").out());
        assertThat(j.get(0).get("name").asText()).isEqualTo("report");
        assertThat(j.get(0).get("running").asInt()).isEqualTo(1);

        assertThat(Cli.run(db.url(), "limits", "set", "--kind", "report", "5").out()).startsWith("limit kind report: at most 5 running");
        assertThat(Cli.run(db.url(), "limits", "clear", "--kind", "report").out()).isEqualTo("limit kind report: cleared\n");
        assertThat(Cli.run(db.url(), "limits", "clear", "--kind", "report").out())
                .isEqualTo("limit kind report: there was none; nothing changed\n");
        assertThat(db.count("concurrency_limits")).isOne();
    }

    @Test
    void badArgumentsAreUsageErrors() {
        assertUsage(Cli.run(db.url(), "limits", "set", "--kind", "report", "-1"), "pgdispatch: MAX=-1 must be a whole number from 0 to 100000");
        assertUsage(Cli.run(db.url(), "limits", "set", "--kind", "a b", "1"),
                "pgdispatch: kind='a b' must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        assertThat(Cli.run(db.url(), "limits", "set", "--kind", "a", "--queue", "b", "1").code()).isEqualTo(Main.USAGE);
        assertThat(db.count("concurrency_limits")).isZero();
    }
}

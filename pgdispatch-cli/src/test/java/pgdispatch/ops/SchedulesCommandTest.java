package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static pgdispatch.ops.ReapCommandTest.assertUsage;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

class SchedulesCommandTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final ObjectMapper mapper = new ObjectMapper();

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, schedules, schedule_fires");
    }

    @Test
    void addListDisableEnableRunNowAndRemove() throws Exception {
        Cli.Run add = Cli.run(db.url(), "schedules", "add", "nightly", "--cron", "0 30 2 * * ?", "--zone", "Europe/Berlin",
                "--kind", "report.build", "--payload", "{\"scope\": \"all\"}", "--queue", "reports", "--backfill", "3", "--by", "alice");
        assertThat(add.code()).as(add.err()).isZero();
        assertThat(add.out()).isEqualTo("schedule nightly created: cron 0 30 2 * * ? Europe/Berlin, task report.build@reports,"
                + " missed fire times: backfill 3\n");
        Cli.Run every = Cli.run(db.url(), "schedules", "add", "tick", "--every", "15m", "--kind", "noop", "--json");
        JsonNode t = mapper.readTree(every.out());
        assertThat(t.get("outcome").asText()).isEqualTo("created");
        assertThat(t.get("every_s").asInt()).isEqualTo(900);
        assertThat(t.get("next_fire_at").asText()).as("placed at once").isNotEqualTo("null");

        assertThat(Cli.run(db.url(), "schedules", "list").out())
                .containsPattern("(?m)^nightly\\s+enabled\\s+cron 0 30 2 \\* \\* \\? Europe/Berlin\\s+report.build@reports\\s+backfill 3\\s+\\S+Z\\s+-\\s+alice$")
                .containsPattern("(?m)^tick\\s+enabled\\s+every 900s\\s+noop@default\\s+skip\\s");
        JsonNode list = mapper.readTree(Cli.run(db.url(), "schedules", "list", "--json").out());
        assertThat(list.get(0).get("name").asText()).isEqualTo("nightly");
        assertThat(list.get(0).get("payload").get("scope").asText()).isEqualTo("all");
        assertThat(list.get(0).get("missed").asText()).isEqualTo("backfill");

        Cli.Run dup = Cli.run(db.url(), "schedules", "add", "tick", "--every", "1h", "--kind", "noop");
        assertThat(dup.code()).isEqualTo(Main.FAILURE);
        assertThat(dup.err()).isEqualTo("pgdispatch: schedule tick exists; add --replace to change it, or `schedules remove tick` first\n");
        assertThat(Cli.run(db.url(), "schedules", "add", "tick", "--every", "1h", "--kind", "noop", "--replace").out())
                .startsWith("schedule tick updated: every 3600s");

        assertThat(Cli.run(db.url(), "schedules", "disable", "tick").out()).isEqualTo("schedule tick: disabled\n");
        assertThat(Cli.run(db.url(), "schedules", "disable", "tick").out()).isEqualTo("schedule tick: already disabled; nothing changed\n");
        assertThat(db.count("schedules WHERE name = 'tick' AND NOT enabled AND next_fire_at IS NULL")).isOne();
        assertThat(Cli.run(db.url(), "schedules", "enable", "tick").out()).startsWith("schedule tick: enabled, next fire at 20");
        assertThat(db.count("schedules WHERE name = 'tick' AND enabled AND next_fire_at > now()")).isOne();

        JsonNode run = mapper.readTree(Cli.run(db.url(), "schedules", "run-now", "nightly", "--json").out());
        long id = run.get("task_id").asLong();
        assertThat(db.count("tasks WHERE id = " + id + " AND kind = 'report.build' AND queue = 'reports'")).isOne();
        assertThat(db.count("schedule_fires WHERE action = 'run_now' AND task_id = " + id)).isOne();

        assertThat(Cli.run(db.url(), "schedules", "remove", "nightly").out()).isEqualTo("schedule nightly: removed\n");
        assertThat(Cli.run(db.url(), "schedules", "remove", "nightly").out()).isEqualTo("schedule nightly: there was none; nothing changed\n");
        assertThat(db.count("tasks WHERE id = " + id)).as("its tasks stay").isOne();
        Cli.Run missing = Cli.run(db.url(), "schedules", "run-now", "nightly");
        assertThat(missing.code()).isEqualTo(Main.FAILURE);
        assertThat(missing.err()).isEqualTo("pgdispatch: schedule nightly not found\n");
    }

    @Test
    void badArgumentsAreUsageErrorsNamingTheRule() {
        assertUsage(Cli.run(db.url(), "schedules", "add", "n", "--cron", "0 25 * * *", "--kind", "k"),
                "pgdispatch: schedule n: cron='0 25 * * *' is not a valid 5-field cron expression: Value 25 not in range [0, 23]");
        assertUsage(Cli.run(db.url(), "schedules", "add", "n", "--cron", "hourly", "--kind", "k"),
                "pgdispatch: schedule n: cron='hourly' has 1 field; it must have 5 fields (minute hour day-of-month month"
                        + " day-of-week) or 6 with seconds first");
        assertUsage(Cli.run(db.url(), "schedules", "add", "n", "--every", "0s", "--kind", "k"),
                "pgdispatch: schedule n: every=PT0S must be a whole number of seconds from 1 s to 366 days");
        assertUsage(Cli.run(db.url(), "schedules", "add", "n", "--every", "soon", "--kind", "k"),
                "pgdispatch: schedule n: every='soon' must be a duration such as 90s, 15m, 2h, 1d or PT15M");
        assertUsage(Cli.run(db.url(), "schedules", "add", "n", "--every", "1m", "--kind", "k", "--zone", "Nowhere/City"),
                "pgdispatch: schedule n: zone='Nowhere/City' is not a known time zone (a region name such as Europe/Berlin, or UTC)");
        assertUsage(Cli.run(db.url(), "schedules", "add", "n", "--every", "1m", "--kind", "k", "--backfill", "0"),
                "pgdispatch: --backfill=0 must be a positive whole number (at most 1000)");
        assertThat(Cli.run(db.url(), "schedules", "add", "n", "--every", "1m", "--cron", "* * * * *", "--kind", "k").code())
                .isEqualTo(Main.USAGE);
        assertThat(db.count("schedules")).isZero();
    }
}

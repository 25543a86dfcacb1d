package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.testing.PgServer;

/** The demo tells the whole lease story on its own database and ends with the status report. */
@Tag("slow") // about 15 s: two nodes with a 3 s node timeout and 8 s tasks; still part of the default run
class DemoCommandTest {
    private final String name = "pgd_ops_demo_" + UUID.randomUUID().toString().substring(0, 8);

    @AfterEach
    void dropAndCheckThreads() {
        PgServer.get().drop(name);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(t -> t.isAlive() && t.getName().startsWith("pgdispatch-")).isEmpty());
    }

    @Test
    void narratesTheCrashTheTakeoverTheRetryAndTheDeadLetterThenPrintsStatus() {
        DatabaseUrl server = PgServer.get().admin();

        Cli.Run r = Cli.run(server, "demo", "--database", name);

        assertThat(r.code()).as(r.out() + r.err()).isZero();
        String out = r.out();
        assertThat(out).contains("node-a claimed #1 sleep 8s (attempt 1, lease token 1)")
                .contains("node-a CRASHES")
                .contains("counts as dead now")
                .containsPattern("reaper: #1 sleep 8s requeued, previous owner node-a \\(owner node node-a not seen since")
                .contains("node-b claimed #1 sleep 8s (attempt 2")
                .contains("#1 sleep 8s succeeded on node-b")
                .contains("#9 fail once: attempt 1 of 5 failed")
                .contains("#9 fail once succeeded")
                .contains("#10 fail always, 2 attempts: attempt 2 of 2 failed on node-b")
                .contains("no attempts left, it is FAILED (dead-lettered)")
                .contains("The story: node-a crashed holding 2 task(s)")
                .contains("--- pgdispatch status ---");
        // narration lines carry a clock time and the seconds since the start
        assertThat(out.lines().filter(l -> l.contains("node-a CRASHES")).findFirst().orElseThrow())
                .matches("\\d\\d:\\d\\d:\\d\\d\\.\\d +\\+ *\\d+\\.\\ds  node-a CRASHES.*");
        assertThat(out.substring(out.indexOf("--- pgdispatch status ---")).lines()
                .filter(l -> l.startsWith("default ")).findFirst().orElseThrow().split("\\s+"))
                .startsWith("default", "0", "0", "0", "9", "1", "0", "0");
        assertThat(out.indexOf("node-a CRASHES")).isLessThan(out.indexOf("reaper: #1 sleep 8s requeued"));
        assertThat(out.indexOf("reaper: #1 sleep 8s requeued")).isLessThan(out.indexOf("#1 sleep 8s succeeded on node-b"));
    }

    @Test
    void refusesADatabaseNameThatIsNotADemoOne() {
        DatabaseUrl server = PgServer.get().admin();
        ReapCommandTest.assertUsage(Cli.run(server, "demo", "--database", "orders"),
                "pgdispatch: --database=orders must be a database name (letters, digits, _ $ -) containing 'demo': the demo drops and re-creates it");
        ReapCommandTest.assertUsage(Cli.run(server.withDatabase("my_demo"), "demo", "--database", "my_demo"),
                "pgdispatch: --database=my_demo is DATABASE_URL's own database; the demo drops and re-creates its database, give it another name");
    }
}

package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;
import pgdispatch.config.DatabaseUrl;

class MainTest {
    private static final DatabaseUrl NOWHERE = DatabaseUrl.parse("test", "postgresql://postgres@127.0.0.1:5432/pgd_ops_unused");

    @Test
    void withoutACommandItIsAUsageError() {
        Cli.Run r = Cli.run(NOWHERE);
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).containsExactly("pgdispatch: a command is required (see: pgdispatch --help)");
    }

    @Test
    void anUnknownCommandIsAUsageError() {
        Cli.Run r = Cli.run(NOWHERE, "frobnicate");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).singleElement().asString().startsWith("pgdispatch: Unmatched argument at index 0: 'frobnicate'");
    }

    @Test
    void helpListsEveryCommand() {
        Cli.Run r = Cli.run(NOWHERE, "--help");
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("migrate", "run", "enqueue", "status", "reap", "tasks", "nodes", "demo");
        for (String[] sub : new String[][] {{"reap"}, {"tasks", "list"}, {"tasks", "show"}, {"tasks", "retry"},
                {"tasks", "cancel"}, {"tasks", "quarantine"}, {"nodes", "list"}, {"nodes", "forget"}, {"demo"}}) {
            String[] args = java.util.Arrays.copyOf(sub, sub.length + 1);
            args[sub.length] = "--help";
            Cli.Run h = Cli.run(NOWHERE, args);
            assertThat(h.code()).as(String.join(" ", args)).isZero();
            assertThat(h.out()).startsWith("Usage: pgdispatch " + String.join(" ", sub));
        }
    }

    @Test
    void badConfigurationIsAUsageErrorNamingEveryVariableBeforeTouchingTheDatabase() {
        Cli.Run r = Cli.run(Map.of("TASK_RENEW_S", "600", "TASK_LEASE_S", "600", "TASK_CONCURRENCY", "0"), NOWHERE, "reap", "--dry-run");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).singleElement().asString()
                .contains("TASK_CONCURRENCY=0 must be a whole number from 1 to 10000")
                .contains("TASK_RENEW_S=600 must be shorter than TASK_LEASE_S=600");
    }

    @Test
    void runWithABadOptionIsAUsageErrorNamingTheVariableItSets() {
        Cli.Run r = Cli.run(NOWHERE, "run", "--concurrency", "lots");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).containsExactly("pgdispatch: TASK_CONCURRENCY=lots must be a whole number from 1 to 10000");
    }

    @Test
    void anUnreachableDatabaseIsAFailure() {
        DatabaseUrl closedPort = DatabaseUrl.parse("test", "postgresql://postgres@127.0.0.1:1/pgd_ops_unused");
        Cli.Run r = Cli.run(closedPort, "tasks", "list");
        assertThat(r.code()).isEqualTo(Main.FAILURE);
        assertThat(r.errLines()).singleElement().asString().startsWith("pgdispatch: ");
    }
}

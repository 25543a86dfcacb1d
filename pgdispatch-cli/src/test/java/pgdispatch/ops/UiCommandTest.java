package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;
import pgdispatch.config.DispatcherConfig;

/** {@code ui} refuses a bad configuration before it touches the database, naming the variable. */
class UiCommandTest {
    @Test
    void aShortTokenExits2WithoutEchoingIt() {
        Cli.Run r = Cli.run(Map.of("PGDISPATCH_UI_TOKEN", "hunter2"), DispatcherConfig.fromEnv(Map.of()).databaseUrl(), "ui", "--port", "0");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).containsExactly(
                "pgdispatch: PGDISPATCH_UI_TOKEN=*** (7 characters) must be at least 16 characters; e.g. openssl rand -hex 16");
    }

    @Test
    void runRefusesAnUnknownUiSwitch() {
        Cli.Run r = Cli.run(Map.of("PGDISPATCH_UI", "yes", "PGDISPATCH_HTTP_PORT", "0"), DispatcherConfig.fromEnv(Map.of()).databaseUrl(), "run");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).containsExactly("pgdispatch: PGDISPATCH_UI=yes must be on or off");
    }
}

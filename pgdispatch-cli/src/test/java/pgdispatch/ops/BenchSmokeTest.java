package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import pgdispatch.bench.BenchOptions;
import pgdispatch.testing.PgServer;

/**
 * A short run of {@code bench --scenario all} through the command line, so the benchmark cannot rot:
 * every scenario prints its line with numbers. No timing thresholds: figures are judged by the bench
 * command on a quiet machine, not here.
 */
class BenchSmokeTest {
    private static final Pattern NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?");

    @AfterEach
    void restoreEnvironment() {
        Env.override(null);
    }

    @Test
    void everyScenarioPrintsItsLineWithNumericFigures() {
        useTestServer();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), "bench", "--scenario", "all", "--tasks", "300",
                "--rate", "50", "--seconds", "1", "--leases", "20,50", "--recovery-tasks", "3", "--backlog", "3000",
                "--concurrency", "4", "--batch", "50");
        assertThat(code).as("exit code; stderr: %s", err).isZero();
        List<String> lines = Arrays.stream(out.toString().split("\n")).filter(l -> l.startsWith("scenario=")).toList();
        assertThat(lines).extracting(l -> l.split(" ")[0].substring("scenario=".length()))
                .containsExactlyElementsOf(BenchOptions.ALL);
        Map<String, String> headline = Map.of("drain", "tasks_per_s", "raw", "overhead_ratio", "latency", "start_p99_ms",
                "renew", "statements_per_tick", "idle", "statements_per_s", "recovery", "recovery_s", "backlog", "claim_ms_big",
                "limit", "claim_ms_limited");
        for (String line : lines) {
            Map<String, String> kv = new HashMap<>();
            for (String pair : line.split(" ")) {
                String[] p = pair.split("=", 2);
                assertThat(p).as("key=value in %s", line).hasSize(2);
                kv.put(p[0], p[1]);
            }
            String key = headline.get(kv.get("scenario"));
            assertThat(kv.get(key)).as("%s in %s", key, line).matches(NUMBER);
            long numeric = kv.values().stream().filter(v -> NUMBER.matcher(v).matches()).count();
            assertThat(numeric).as("numeric figures in %s", line).isGreaterThanOrEqualTo(3);
        }
        assertThat(out.toString()).contains("summary (").contains("EXPLAIN ANALYZE of the claim");
    }

    @Test
    void drainAndRawAreMeasuredOncePerNodeCountWithTheServersCpu() {
        var server = useTestServer();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), "bench", "--scenario", "drain,raw", "--nodes", "1,2",
                "--tasks", "200", "--concurrency", "4", "--batch", "50");
        assertThat(code).as("exit code; stderr: %s", err).isZero();
        List<String> lines = Arrays.stream(out.toString().split("\n")).filter(l -> l.startsWith("scenario=")).toList();
        assertThat(lines).extracting(l -> l.replaceAll("^scenario=(\\w+) .* nodes=(\\d+) .*$", "$1/$2"))
                .containsExactly("drain/1", "drain/2", "raw/1", "raw/2");
        // raw is related to the drain of its own node count
        assertThat(lines.get(2)).contains("overhead_ratio=");
        if (server.host().equals("127.0.0.1") || server.host().equals("localhost")) {
            assertThat(lines).allSatisfy(l -> assertThat(l).containsPattern("server_cpu_us_per_task=\\d"));
        }
        if (java.nio.file.Files.isDirectory(java.nio.file.Path.of("/proc/self/task"))) {
            // the node's CPU split by thread (the process total comes in 10 ms ticks: a run this small may
            // show the application's share below zero, so only the presence of the figures is checked)
            assertThat(lines).allSatisfy(l -> assertThat(l).containsPattern("client_app_cpu_us_per_task=-?\\d")
                    .containsPattern("client_jit_cpu_us_per_task=\\d").containsPattern("client_gc_cpu_us_per_task=\\d"));
            assertThat(lines.get(0)).containsPattern("client_start_stop_cpu_ms=\\d");
        }
        assertThat(Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(err), "bench", "--nodes", "1,0")).isEqualTo(Main.USAGE);
        assertThat(err.toString()).contains("--nodes=0 must be a positive whole number");
    }

    /** DATABASE_URL pointing at the test server's postgres database (bench makes its own scratch database there). */
    private static pgdispatch.config.DatabaseUrl useTestServer() {
        Map<String, String> env = new HashMap<>();
        var server = PgServer.get().admin();
        String jdbc = server.withDatabase("postgres").jdbcUrl();
        env.put("DATABASE_URL", jdbc + (jdbc.contains("?") ? "&" : "?") + "user=" + server.user()
                + (server.password() == null ? "" : "&password=" + server.password()));
        Env.override(env);
        return server;
    }

    @Test
    void rejectsAnUnknownScenarioAsAUsageError() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), "bench", "--scenario", "warp");
        assertThat(code).isEqualTo(Main.USAGE);
        assertThat(err.toString()).contains("--scenario=warp must be one of drain|raw|latency|renew|idle|recovery|backlog|limit|all");
    }
}

package pgdispatch.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/** The node's HTTP endpoint over a real socket: health answers and /metrics as Prometheus text. */
class HttpEndpointTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    /** One sample line of the Prometheus text format: {@code name{labels} value [timestamp]}. */
    private static final Pattern SAMPLE = Pattern.compile(
            "([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*)\\})? (\\S+)( -?\\d+)?");

    /**
     * The metric names docs/MONITORING.md lists ("Metrics"), as exported. Kept here as well as read from
     * the document (see {@link #everyMetricTheMonitoringGuideListsIsExported}) so the suite checks them in a
     * checkout without the docs too.
     */
    static final List<String> DOCUMENTED = List.of(
            "pgdispatch_tasks_claimed_total", "pgdispatch_tasks_succeeded_total", "pgdispatch_tasks_failed_total",
            "pgdispatch_tasks_retried_total", "pgdispatch_tasks_in_flight", "pgdispatch_tasks_unhandled", "pgdispatch_claim_seconds",
            "pgdispatch_handler_seconds", "pgdispatch_leases_renewed_total", "pgdispatch_leases_lost_total",
            "pgdispatch_completions_refused_total", "pgdispatch_startup_recovered_total", "pgdispatch_tasks_requeued_total",
            "pgdispatch_tasks_quarantined_total", "pgdispatch_reaper_sweeps_total", "pgdispatch_reaper_rows_total",
            "pgdispatch_queue_depth", "pgdispatch_queue_lag_seconds", "hikaricp_connections", "hikaricp_connections_active",
            "hikaricp_connections_idle", "hikaricp_connections_pending", "hikaricp_connections_max",
            "hikaricp_connections_min", "hikaricp_connections_timeout_total", "hikaricp_connections_acquire_seconds",
            "hikaricp_connections_usage_seconds", "hikaricp_connections_creation_seconds",
            // issue 14: registered per handled kind at start
            "pgdispatch_tasks_stuck_total", "pgdispatch_lease_extensions_total", "pgdispatch_running_expiring",
            "pgdispatch_running_stale", "pgdispatch_running_stuck", "pgdispatch_running_silence_max_seconds",
            "pgdispatch_running_renewals_avg", "pgdispatch_running_renewals_max", "pgdispatch_running_extensions_max",
            "pgdispatch_node_ready", "pgdispatch_health_problem", "pgdispatch_claimer_cycle_age_seconds",
            "pgdispatch_renewer_success_age_seconds", "pgdispatch_renewer_failures", "pgdispatch_completer_unwritten_age_seconds",
            "pgdispatch_completer_unwritten");

    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private Dispatcher dispatcher;
    private HttpEndpoint http;

    @BeforeEach
    void start() throws Exception {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes");
        DispatcherConfig cfg = db.config().withHttpPort(0);
        // the dispatcher opens its own pool, so the pool's meters land in its registry
        dispatcher = Dispatcher.builder(cfg).meterRegistry(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT)).build().start();
        http = HttpEndpoint.startIfEnabled(cfg, dispatcher);
    }

    @AfterEach
    void stop() {
        dispatcher.stop();
        if (http != null) http.stop();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(t -> t.isAlive() && t.getName().startsWith("pgdispatch-")).isEmpty());
    }

    private HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.port() + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void liveAnswers200AndReadyAnswers200WhileRegisteredThen503AfterStop() throws Exception {
        assertThat(http.port()).isPositive();
        HttpResponse<String> live = get("/health/live");
        assertThat(live.statusCode()).isEqualTo(200);
        assertThat(live.body()).isEqualTo("{\"status\":\"up\"}\n");

        HttpResponse<String> ready = get("/health/ready");
        assertThat(ready.statusCode()).isEqualTo(200);
        assertThat(ready.body()).isEqualTo("{\"status\":\"ready\",\"node\":\"node-a\"}\n");

        dispatcher.stop();

        HttpResponse<String> notReady = get("/health/ready");
        assertThat(notReady.statusCode()).isEqualTo(503);
        assertThat(notReady.body()).isEqualTo("{\"status\":\"not_ready\",\"node\":\"node-a\",\"reason\":\"lifecycle: node is"
                + " stopped\",\"problems\":[{\"part\":\"lifecycle\",\"reason\":\"node is stopped\"}]}\n");
        assertThat(get("/health/live").statusCode()).isEqualTo(200);
    }

    /**
     * Issue 13: one client that sends half a request and goes silent held the old server's only thread,
     * so every probe timed out while the socket stayed open. Here more silent clients than the server has
     * threads are connected while the probes are asked.
     */
    @Test
    void silentHalfSentRequestsDoNotBlockProbes() throws Exception {
        List<Socket> silent = new ArrayList<>();
        try {
            for (int i = 0; i < 40; i++) {
                Socket s = new Socket("127.0.0.1", http.port());
                s.getOutputStream().write("GET /health/live HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII));
                s.getOutputStream().flush();
                silent.add(s);
            }
            HttpClient probe = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
            for (String path : List.of("/health/live", "/health/ready", "/metrics")) {
                HttpResponse<String> r = probe.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.port() + path))
                        .timeout(Duration.ofSeconds(3)).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(path).isEqualTo(200);
            }
        } finally {
            for (Socket s : silent) s.close();
        }
    }

    /** The silent client itself is cut off once it has been idle for the connection timeout. */
    @Test
    void aSilentClientIsDisconnectedAfterTheIdleTimeout() throws Exception {
        HttpEndpoint quick = HttpEndpoint.start("127.0.0.1", 0, Duration.ofMillis(500), c -> c.routes.get("/x", ctx -> ctx.result("x")));
        try (Socket s = new Socket("127.0.0.1", quick.port())) {
            s.getOutputStream().write("GET /x HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII));
            s.setSoTimeout(10_000);
            // the server answers 408 or nothing, then closes: read() reaches -1 (or the socket is reset);
            // if the server kept the socket open, read() would throw SocketTimeoutException after 10 s
            String answer;
            try {
                answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            } catch (java.net.SocketTimeoutException stillOpen) {
                throw new AssertionError("the server kept a silent half-sent request open for 10 s", stillOpen);
            } catch (java.net.SocketException reset) {
                answer = "";
            }
            assertThat(answer).satisfiesAnyOf(a -> assertThat(a).isEmpty(), a -> assertThat(a).startsWith("HTTP/1.1 408"));
        } finally {
            quick.stop();
        }
    }

    @Test
    void onlyTheExactPathsAnswerOtherPathsGet404() throws Exception {
        for (String path : List.of("/health/livex", "/health/live/", "/health/live/x", "/metricsfoo", "/metrics/x",
                "/health", "/", "/health/ready.json")) {
            HttpResponse<String> r = get(path);
            assertThat(r.statusCode()).as(path).isEqualTo(404);
            assertThat(r.body()).as(path).isEqualTo("not found: GET " + path + "\n");
        }
    }

    @Test
    void anotherMethodOnAKnownPathGets405() throws Exception {
        for (String method : List.of("POST", "PUT", "DELETE", "PATCH")) {
            for (String path : List.of("/health/live", "/health/ready", "/metrics")) {
                HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.port() + path))
                        .method(method, HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(10)).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(method + " " + path).isEqualTo(405);
            }
        }
    }

    /**
     * Issue 11 item 8: a claim loop stuck in its statement (a trigger waits on an advisory lock the test
     * holds) turns readiness 503 naming the claimer; it answered 200 before, asking only the database.
     */
    @Test
    void readyAnswers503NamingAStalledClaimLoop() throws Exception {
        // short timings: the claimer's bound is 2 x TASK_RENEW_S + 4 x TASK_POLL_MS = 2.8 s
        dispatcher.stop();
        http.stop();
        DispatcherConfig cfg = db.config().withHttpPort(0).withSocketTimeout(Duration.ZERO)
                .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(3))
                .withPollInterval(Duration.ofMillis(200));
        dispatcher = Dispatcher.builder(cfg).meterRegistry(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT)).build().start();
        http = HttpEndpoint.startIfEnabled(cfg, dispatcher);
        await().atMost(Duration.ofSeconds(10)).until(() -> get("/health/ready").statusCode() == 200);
        db.exec("""
                CREATE OR REPLACE FUNCTION test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock_shared(4712);
                    RETURN NEW;
                END $$""");
        db.exec("CREATE TRIGGER test_stall_claim BEFORE UPDATE ON tasks FOR EACH ROW"
                + " WHEN (OLD.status = 'pending' AND NEW.status = 'running') EXECUTE FUNCTION test_stall()");
        try (var c = db.database().dataSource().getConnection(); var st = c.createStatement()) {
            st.execute("SELECT pg_advisory_lock(4712)");
            try {
                new TaskClient(new TaskStore(db.database()), 1 << 20).enqueue(TaskClient.Enqueue.of("noop", "{}"));
                await().atMost(Duration.ofSeconds(20)).until(() -> get("/health/ready").statusCode() == 503);
                HttpResponse<String> r = get("/health/ready");
                assertThat(r.body()).contains("\"status\":\"not_ready\"")
                        .containsPattern("\"reason\":\"claimer: no claim cycle completed for \\d+\\.\\ds \\(bound 2\\.8s\\)\"")
                        .contains("{\"part\":\"claimer\",\"reason\":\"no claim cycle completed for ");
                assertThat(value(scrape(), "pgdispatch_health_problem", "part=\"claimer\"")).isEqualTo(1.0);
            } finally {
                st.execute("SELECT pg_advisory_unlock(4712)");
                db.exec("DROP TRIGGER test_stall_claim ON tasks");
            }
        }
        await().atMost(Duration.ofSeconds(20)).until(() -> get("/health/ready").statusCode() == 200);
    }

    @Test
    void metricsIsPrometheusTextWithTaskCountersAfterATaskRuns() throws Exception {
        long id = new TaskClient(new TaskStore(db.database()), 1 << 20).enqueue(TaskClient.Enqueue.of("noop", "{}"));
        await().atMost(Duration.ofSeconds(20)).until(() -> db.count("tasks WHERE status = 'succeeded' AND id = " + id) == 1);

        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            List<Sample> samples = scrape();
            assertThat(value(samples, "pgdispatch_tasks_claimed_total", "kind=\"noop\",queue=\"default\"")).isEqualTo(1.0);
            assertThat(value(samples, "pgdispatch_tasks_succeeded_total", "kind=\"noop\",queue=\"default\"")).isEqualTo(1.0);
            assertThat(value(samples, "pgdispatch_handler_seconds_count", "kind=\"noop\"")).isEqualTo(1.0);
        });
        List<Sample> samples = scrape();
        assertThat(value(samples, "hikaricp_connections_max", "pool=\"pgdispatch-node-a\"")).isEqualTo(8.0);
        assertThat(samples).anyMatch(s -> s.name().equals("hikaricp_connections") && s.labels().contains("pool=\"pgdispatch-node-a\""));
    }

    @Test
    void everyCounterIsExportedAtZeroBeforeItsFirstEvent() throws Exception {
        List<Sample> samples = scrape();
        assertThat(value(samples, "pgdispatch_tasks_requeued_total", "")).isZero();
        assertThat(value(samples, "pgdispatch_completions_refused_total", "")).isZero();
        assertThat(value(samples, "pgdispatch_reaper_rows_total", "action=\"quarantine\"")).isZero();
        assertThat(value(samples, "pgdispatch_tasks_failed_total", "kind=\"fail\",queue=\"default\"")).isZero();
        assertThat(value(samples, "pgdispatch_queue_depth", "queue=\"default\"")).isZero();
        assertThat(missing(names(samples), DOCUMENTED)).isEmpty();
    }

    @Test
    void everyMetricTheMonitoringGuideListsIsExported() throws Exception {
        Path guide = Path.of(System.getProperty("pgdispatch.monitoringGuide", "docs/MONITORING.md"));
        Assumptions.assumeTrue(Files.exists(guide), guide + " is not in this checkout (it is committed with the docs)");
        String text = Files.readString(guide);
        String metrics = text.substring(text.indexOf("\n## Metrics"));
        Set<String> listed = new LinkedHashSet<>();
        // the first column of each table row: `name` or `name_a`, `name_b`
        Matcher row = Pattern.compile("(?m)^\\| (`[a-z_]+`(?:, `[a-z_]+`)*) \\|").matcher(metrics);
        while (row.find()) {
            Matcher name = Pattern.compile("`([a-z_]+)`").matcher(row.group(1));
            while (name.find()) listed.add(name.group(1));
        }
        assertThat(listed).hasSizeGreaterThan(20).containsAll(DOCUMENTED);
        assertThat(missing(names(scrape()), List.copyOf(listed))).isEmpty();
    }

    record Sample(String name, String labels, double value) {}

    /** Scrapes /metrics and parses it; every line is a comment or a well-formed sample. */
    private List<Sample> scrape() throws Exception {
        HttpResponse<String> r = get("/metrics");
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type")).hasValueSatisfying(t -> assertThat(t).startsWith("text/plain"));
        List<Sample> out = new ArrayList<>();
        for (String line : r.body().split("\n")) {
            if (line.isEmpty() || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
            Matcher m = SAMPLE.matcher(line);
            assertThat(m.matches()).as("a Prometheus sample line: %s", line).isTrue();
            out.add(new Sample(m.group(1), m.group(3) == null ? "" : m.group(3), Double.parseDouble(m.group(4))));
        }
        assertThat(out).isNotEmpty();
        return out;
    }

    private static double value(List<Sample> samples, String name, String labels) {
        return samples.stream().filter(s -> s.name().equals(name) && s.labels().equals(labels)).findFirst()
                .orElseThrow(() -> new AssertionError("no sample " + name + "{" + labels + "} among "
                        + samples.stream().map(s -> s.name() + "{" + s.labels() + "}").filter(s -> s.startsWith(name)).toList()))
                .value();
    }

    private static Set<String> names(List<Sample> samples) {
        Set<String> n = new LinkedHashSet<>();
        for (Sample s : samples) n.add(s.name());
        return n;
    }

    /** Documented names with no series: a histogram or summary counts as present by its _count series. */
    private static List<String> missing(Set<String> exported, List<String> documented) {
        return documented.stream().filter(d -> !exported.contains(d) && !exported.contains(d + "_count")).toList();
    }
}

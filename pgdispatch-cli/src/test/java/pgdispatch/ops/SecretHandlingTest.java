package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.read.ListAppender;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;
import pgdispatch.api.TaskClient;
import pgdispatch.config.ConfigException;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TestDatabase;

/**
 * The database password never shows: not in logs (all of them, captured), errors, {@code status}
 * (table or JSON), metrics, health answers or the effective configuration; and the HTTP endpoint
 * listens on loopback unless told otherwise.
 */
class SecretHandlingTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    // The suite's server trusts local connections and ignores a password; when it needs the real one
    // (PGDISPATCH_TEST_JDBC_URL, Testcontainers), that password is the secret to look for.
    private static String secret;
    private static final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private static Logger root;
    private static Level rootLevel;
    private static final List<Appender<ILoggingEvent>> quieted = new ArrayList<>();

    /** Every logger at DEBUG into a list for this class (the suite runs at WARN), none to the console. */
    @BeforeAll
    static void captureLogs() {
        secret = db.url().password() != null ? db.url().password() : "pgd-S3cr3t-" + UUID.randomUUID().toString().substring(0, 8);
        root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        rootLevel = root.getLevel();
        root.iteratorForAppenders().forEachRemaining(quieted::add);
        quieted.forEach(root::detachAppender);
        logs.start();
        root.addAppender(logs);
        root.setLevel(Level.DEBUG);
    }

    @AfterAll
    static void stopCapturing() {
        root.setLevel(rootLevel);
        root.detachAppender(logs);
        logs.stop();
        quieted.forEach(root::addAppender);
    }

    @AfterEach
    void restoreEnv() {
        Env.override(null);
    }

    private static String url(String host, int port, String database) {
        return "postgres://" + db.url().user() + ":" + secret + "@" + host + ":" + port + "/" + database;
    }

    private static String allLogs() {
        StringBuilder sb = new StringBuilder();
        for (ILoggingEvent e : new ArrayList<>(logs.list)) {
            sb.append(e.getFormattedMessage()).append('\n');
            if (e.getThrowableProxy() != null) sb.append(ThrowableProxyUtil.asString(e.getThrowableProxy())).append('\n');
        }
        return sb.toString();
    }

    private static String chain(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable x = t; x != null; x = x.getCause() == x ? null : x.getCause()) sb.append(x).append('\n');
        return sb.toString();
    }

    @ParameterizedTest
    @ValueSource(strings = {"mysql://app:SECRET@db/x", "postgres://app:SECRET@/x", "postgres://app:SECRET@db",
            "postgres://app:SECRET@db/bad name", "postgres://app:SECRET with space@db/x",
            "postgres://app:SE@CRET@db/x", "postgres://app:SE/CRET@db/x", "postgres://app:SE?CRET@db/x",
            "jdbc:postgresql://db/bad name?user=app&password=SECRET", "jdbc:postgresql:///x?password=SECRET"})
    void configurationErrorsMaskThePasswordHoweverTheUrlIsBroken(String raw) {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(Map.of("DATABASE_URL", raw)))
                .isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("DATABASE_URL=")
                .satisfies(e -> assertThat(chain(e)).doesNotContain("SECRET").doesNotContain("CRET"));
    }

    @ParameterizedTest // issue 13: each named nothing ("Failed to get driver instance" exit 1, or "has no host name")
    @ValueSource(strings = {
            "postgres://app:SECRET@db:99999/x|port 99999 must be from 1 to 65535",
            "postgres://app:SECRET@db:5x/x|port '5x' must be a number from 1 to 65535",
            "postgres://app:SE@CRET@db:5432/x|has an @ in its user or password: write it percent-encoded as %40",
            "postgres://app:SECRET@dbé/x|host 'dbé' must be an ASCII host name or IP address; its ASCII (punycode) form is xn--db-cja"})
    void brokenDatabaseUrlExitsTwoNamingTheVariableTheMaskedValueAndTheRule(String rawAndRule) {
        String raw = rawAndRule.substring(0, rawAndRule.indexOf('|'));
        String rule = rawAndRule.substring(rawAndRule.indexOf('|') + 1);
        Env.override(Map.of("DATABASE_URL", raw));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        for (String[] command : new String[][] {{"status"}, {"enqueue", "--kind", "noop"}, {"migrate"}, {"run"}}) {
            int code = Main.execute(new PrintWriter(out), new PrintWriter(err), command);
            assertThat(code).as(String.join(" ", command) + ": " + err).isEqualTo(Main.USAGE);
        }
        assertThat(err.toString().lines().distinct()).singleElement().asString()
                .startsWith("pgdispatch: DATABASE_URL=" + raw.replaceAll(":SE.*@", ":***@"))
                .endsWith(" " + rule)
                .doesNotContain("CRET");
    }

    @Test
    void runningNodeKeepsThePasswordOutOfLogsStatusMetricsAndHealth() throws Exception {
        Map<String, String> env = new HashMap<>();
        env.put("DATABASE_URL", url(db.url().host(), db.url().port(), db.url().database()));
        env.put("DISPATCHER_NODE_ID", "secret-test");
        env.put("PGDISPATCH_HTTP_PORT", "0");
        env.put("TASK_LEASE_S", "10");
        env.put("TASK_RENEW_S", "1");
        env.put("TASK_CONCURRENCY", "2");
        DispatcherConfig cfg = DispatcherConfig.fromEnv(env);
        List<String> seen = new ArrayList<>();
        seen.add(cfg.describe().toString());
        seen.add(cfg.databaseUrl().toString());

        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Dispatcher d = Dispatcher.builder(cfg).meterRegistry(registry).build().start();
        HttpEndpoint http = HttpEndpoint.startIfEnabled(cfg, d);
        try {
            TaskClient client = new TaskClient(new TaskStore(d.database()), cfg.maxPayloadBytes());
            long ok = client.enqueue(TaskClient.Enqueue.of("noop", "{}"));
            long bad = client.enqueue(TaskClient.Enqueue.of("fail", "{}").maxAttempts(1));
            await().atMost(Duration.ofSeconds(20)).until(() ->
                    db.count("tasks WHERE id IN (" + ok + ", " + bad + ") AND status IN ('succeeded', 'failed')") == 2);

            HttpClient hc = HttpClient.newHttpClient();
            for (String path : List.of("/metrics", "/health/ready", "/health/live")) {
                HttpResponse<String> r = hc.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.port() + path)).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(path).isEqualTo(200);
                seen.add(r.body());
            }
            seen.add(registry.scrape());

            Env.override(env);
            for (String[] args : List.of(new String[] {"status"}, new String[] {"status", "--json"})) {
                StringWriter out = new StringWriter();
                StringWriter err = new StringWriter();
                assertThat(Main.execute(new PrintWriter(out), new PrintWriter(err), args)).isEqualTo(Main.OK);
                seen.add(out.toString());
                seen.add(err.toString());
            }
        } finally {
            if (http != null) http.stop();
            d.stop();
        }
        String logged = allLogs();
        assertThat(logged).contains("dispatcher: node=secret-test").contains(db.url().user() + ":***@");
        assertThat(String.join("\n", seen)).contains("pgdispatch_tasks_succeeded_total").contains(db.url().user() + ":***@");
        assertThat(logged).doesNotContain(secret);
        assertThat(seen).allSatisfy(s -> assertThat(s).doesNotContain(secret));
    }

    @Test
    void unreachableDatabaseErrorNamesTheServerButNotThePassword() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort(); // closed again: nothing listens there
        }
        String where = "postgresql://" + db.url().user() + ":***@127.0.0.1:" + port + "/nowhere";
        DispatcherConfig cfg = DispatcherConfig.fromEnv(Map.of("DATABASE_URL", url("127.0.0.1", port, "nowhere")));

        assertThatThrownBy(() -> Dispatcher.builder(cfg).build())
                .isInstanceOf(Database.UnreachableException.class)
                .hasMessageStartingWith("cannot connect to " + where + ": Connection to 127.0.0.1:" + port + " refused")
                .satisfies(e -> assertThat(chain(e)).doesNotContain(secret));

        Env.override(Map.of("DATABASE_URL", url("127.0.0.1", port, "nowhere"), "PGDISPATCH_HTTP_PORT", "off"));
        // not 'run': a node waits for its database with back-off instead of exiting (RunCommandTest)
        for (String[] args : List.of(new String[] {"status"}, new String[] {"enqueue", "--kind", "noop"}, new String[] {"migrate"})) {
            StringWriter err = new StringWriter();
            int code = Main.execute(new PrintWriter(new StringWriter()), new PrintWriter(err), args);
            assertThat(code).as(String.join(" ", args)).isEqualTo(Main.FAILURE);
            assertThat(err.toString()).as(String.join(" ", args))
                    .startsWith("pgdispatch: cannot connect to " + where + ": Connection to 127.0.0.1:" + port + " refused")
                    .doesNotContain(secret);
        }
        assertThat(allLogs()).doesNotContain(secret);
    }

    @Test
    void missingDatabaseIsNamedInTheError() {
        DispatcherConfig cfg = DispatcherConfig.fromEnv(Map.of("DATABASE_URL",
                url(db.url().host(), db.url().port(), "pgd_t_no_such_db_" + UUID.randomUUID().toString().substring(0, 6))));
        assertThatThrownBy(() -> Dispatcher.builder(cfg).build())
                .isInstanceOf(Database.UnreachableException.class)
                .hasMessageContaining("FATAL: database \"pgd_t_no_such_db_")
                .hasMessageContaining("does not exist")
                .satisfies(e -> assertThat(chain(e)).doesNotContain(secret));
    }

    @Test
    void httpEndpointListensOnLoopbackOnlyByDefault() throws Exception {
        assertThat(DispatcherConfig.fromEnv(Map.of()).httpHost()).isEqualTo("127.0.0.1");
        DispatcherConfig cfg = db.config().withHttpPort(0);
        Dispatcher d = Dispatcher.builder(cfg).database(db.database()).build().start();
        HttpEndpoint http = HttpEndpoint.startIfEnabled(cfg, d);
        try {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", http.port()), 2000);
                assertThat(s.isConnected()).isTrue();
            }
            List<InetAddress> external = new ArrayList<>();
            for (NetworkInterface ni : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                if (!ni.isUp() || ni.isLoopback()) continue;
                for (InetAddress a : Collections.list(ni.getInetAddresses())) {
                    if (a instanceof Inet4Address) external.add(a);
                }
            }
            org.junit.jupiter.api.Assumptions.assumeFalse(external.isEmpty(), "this machine has no non-loopback IPv4 address");
            for (InetAddress a : external) {
                assertThatThrownBy(() -> {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(a, http.port()), 2000);
                    }
                }).as("connect via " + a).isInstanceOf(java.net.ConnectException.class);
            }
        } finally {
            http.stop();
            d.stop();
        }
    }
}

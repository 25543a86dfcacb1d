package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.SQLException;
import java.util.Map;
import org.junit.jupiter.api.Test;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import pgdispatch.config.ConfigException;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;

/** {@code run} against a database that is not there yet: it waits and says why, it does not exit. */
class RunCommandTest {
    @Test
    void aRefusedConnectionIsAReasonToRetryAndABadConfigurationIsNot() {
        var refused = new RuntimeException("pool", new SQLException("Connection to db:5432 refused", "08001"));
        assertThat(RunCommand.unreachable(refused)).isEqualTo("SQLState 08001: Connection to db:5432 refused");
        assertThat(RunCommand.unreachable(new IllegalStateException("x", new ConnectException("Connection refused"))))
                .isEqualTo("ConnectException: Connection refused");
        assertThat(RunCommand.unreachable(new ConfigException("TASK_LEASE_S=-5 must be a positive whole number of seconds"))).isNull();
        assertThat(RunCommand.unreachable(new RuntimeException(new SQLException("permission denied", "42501")))).isNull();
    }

    @Test
    void readinessIsFalseWithTheReasonUntilTheNodeHasStarted() throws Exception {
        DispatcherConfig cfg = DispatcherConfig.fromEnv(Map.of("PGDISPATCH_HTTP_PORT", "0"));
        HttpEndpoint http = HttpEndpoint.startIfEnabled(cfg, new PrometheusMeterRegistry(PrometheusConfig.DEFAULT),
                () -> null, () -> "database unreachable: SQLState 08001: Connection refused");
        try {
            var client = HttpClient.newHttpClient();
            var ready = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.port() + "/health/ready")).build(),
                    HttpResponse.BodyHandlers.ofString());
            var live = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + http.port() + "/health/live")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(ready.statusCode()).isEqualTo(503);
            assertThat(ready.body()).contains("database unreachable: SQLState 08001");
            assertThat(live.statusCode()).isEqualTo(200);
        } finally {
            http.stop();
        }
    }

    /**
     * Issue 11 item 10: {@code run --migrate} migrated before its retry loop, so an unreachable database
     * ended the process (exit 1) instead of being waited for, as {@code run} without it does.
     */
    @Test
    void runMigrateWaitsForAnUnreachableDatabaseInsteadOfExiting() throws Exception {
        // a "server" that accepts each connection and closes it at once: every attempt is counted
        java.util.concurrent.atomic.AtomicInteger attempts = new java.util.concurrent.atomic.AtomicInteger();
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"))) {
            Thread acceptor = Thread.ofPlatform().daemon().name("test-closing-server").start(() -> {
                while (!server.isClosed()) {
                    try (var c = server.accept()) {
                        attempts.incrementAndGet();
                    } catch (java.io.IOException e) {
                        return;
                    }
                }
            });
            var nowhere = new pgdispatch.config.DatabaseUrl("127.0.0.1", server.getLocalPort(), "pgd_nowhere", "postgres",
                    null, Map.of());
            java.util.concurrent.atomic.AtomicReference<Cli.Run> ended = new java.util.concurrent.atomic.AtomicReference<>();
            Thread run = Thread.ofPlatform().name("test-run-migrate").start(
                    () -> ended.set(Cli.run(Map.of("PGDISPATCH_HTTP_PORT", "off"), nowhere, "run", "--migrate")));
            try {
                // it retries with back-off (1 s, 2 s, ...) instead of giving up after the first attempt
                org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(20)).until(() -> attempts.get() >= 3);
                assertThat(ended.get()).as("run --migrate ended: %s", ended.get()).isNull();
            } finally {
                run.interrupt(); // what ends the wait in a test; a real node ends it with SIGTERM
                run.join(10_000);
            }
            assertThat(run.isAlive()).isFalse();
            acceptor.interrupt();
        }
    }

    /** Issue 13: the JDK server said only "Unresolved address" and exit 1. */
    @Test
    void anUnresolvableHttpHostExits2NamingTheVariable() {
        Cli.Run r = Cli.run(Map.of("PGDISPATCH_HTTP_HOST", "no-such-host.invalid", "PGDISPATCH_HTTP_PORT", "0"),
                DispatcherConfig.fromEnv(Map.of()).databaseUrl(), "run");
        assertThat(r.code()).isEqualTo(Main.USAGE);
        assertThat(r.errLines()).hasSize(1);
        assertThat(r.errLines()[0]).startsWith("pgdispatch: PGDISPATCH_HTTP_HOST=no-such-host.invalid does not resolve to an address")
                .endsWith("use an IP address such as 127.0.0.1 or 0.0.0.0, or a resolvable host name");
    }

    /** Issue 13: the JDK server said only "Address already in use" and exit 1. */
    @Test
    void anHttpPortInUseExits2NamingTheAddressAndTheVariable() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            int port = taken.getLocalPort();
            Cli.Run r = Cli.run(Map.of("PGDISPATCH_HTTP_HOST", "127.0.0.1", "PGDISPATCH_HTTP_PORT", Integer.toString(port)),
                    DispatcherConfig.fromEnv(Map.of()).databaseUrl(), "run");
            assertThat(r.code()).isEqualTo(Main.USAGE);
            assertThat(r.errLines()).containsExactly("pgdispatch: PGDISPATCH_HTTP_PORT=" + port + ": address 127.0.0.1:" + port
                    + " is already in use (PGDISPATCH_HTTP_HOST=127.0.0.1); stop what holds it, choose another port,"
                    + " or PGDISPATCH_HTTP_PORT=off");
        }
        assertThat(Thread.getAllStackTraces().keySet()).filteredOn(t -> t.isAlive() && t.getName().startsWith("pgdispatch-http")).isEmpty();
    }
}

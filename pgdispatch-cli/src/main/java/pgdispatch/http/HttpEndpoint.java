package pgdispatch.http;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import io.micrometer.core.instrument.MeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;

/**
 * {@code /metrics} (Prometheus text), {@code /health/live} (the process answers) and
 * {@code /health/ready} (database reachable, schema at this build's version, node registered), bound to
 * {@code PGDISPATCH_HTTP_HOST} (loopback by default).
 */
public final class HttpEndpoint {
    private static final Logger log = LoggerFactory.getLogger(HttpEndpoint.class);

    private final HttpServer server;

    private HttpEndpoint(HttpServer server) {
        this.server = server;
    }

    /** Starts the endpoint for a running node unless {@code PGDISPATCH_HTTP_PORT=off}; port 0 picks a free one. */
    public static HttpEndpoint startIfEnabled(DispatcherConfig cfg, Dispatcher d) throws IOException {
        return startIfEnabled(cfg, d.metrics().registry(), () -> d, () -> "node not started");
    }

    /**
     * Starts the endpoint before the node exists (the database may still be unreachable): until
     * {@code node} supplies one, {@code /health/ready} answers 503 with {@code startupProblem}.
     */
    public static HttpEndpoint startIfEnabled(DispatcherConfig cfg, MeterRegistry registry, Supplier<Dispatcher> node,
                                              Supplier<String> startupProblem) throws IOException {
        if (cfg.httpPort() == DispatcherConfig.HTTP_OFF) return null;
        HttpServer s = HttpServer.create(new InetSocketAddress(cfg.httpHost(), cfg.httpPort()), 16);
        s.setExecutor(Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("pgdispatch-http").factory()));
        s.createContext("/metrics", ex -> {
            if (registry instanceof PrometheusMeterRegistry p) {
                send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", p.scrape());
            } else {
                send(ex, 503, "text/plain", "metrics registry is not Prometheus\n");
            }
        });
        s.createContext("/health/live", ex -> send(ex, 200, "application/json", "{\"status\":\"up\"}\n"));
        s.createContext("/health/ready", ex -> {
            Dispatcher d = node.get();
            String problem = d == null ? startupProblem.get() : readiness(d);
            if (problem == null) {
                send(ex, 200, "application/json", "{\"status\":\"ready\",\"node\":\"" + d.nodeId() + "\"}\n");
            } else {
                send(ex, 503, "application/json", "{\"status\":\"not_ready\",\"reason\":\"" + problem.replace("\"", "'") + "\"}\n");
            }
        });
        s.start();
        log.info("http: serving /metrics /health/live /health/ready on {}:{}", cfg.httpHost(), s.getAddress().getPort());
        return new HttpEndpoint(s);
    }

    /** Null when ready, else why not. */
    static String readiness(Dispatcher d) {
        if (!d.registered()) return "node not registered";
        try (Connection c = d.database().dataSource().getConnection()) {
            if (!c.isValid(2)) return "database not reachable";
        } catch (Exception e) {
            return "database not reachable: " + e.getClass().getSimpleName();
        }
        try {
            d.database().requireCurrentSchema();
        } catch (RuntimeException e) {
            return e.getMessage();
        }
        return null;
    }

    public int port() {
        return server.getAddress().getPort();
    }

    public void stop() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }

    private static void send(HttpExchange ex, int code, String type, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(code, b.length);
        try (OutputStream o = ex.getResponseBody()) {
            o.write(b);
        }
    }
}

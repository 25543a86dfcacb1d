package pgdispatch.http;

import io.javalin.Javalin;
import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.BindException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.ConfigException;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.runtime.Health;

/**
 * {@code /metrics} (Prometheus text), {@code /health/live} (the process answers) and
 * {@code /health/ready} ({@link Dispatcher#health()}: every part of the node doing its work, the database
 * reachable and at this build's schema; 503 with each problem otherwise), bound to
 * {@code PGDISPATCH_HTTP_HOST} (loopback by default), plus whatever else the node serves on the same port
 * (the dashboard).
 *
 * <p>Served by Jetty (through Javalin): connections are multiplexed over a small selector, so a client
 * that sends half a request and goes silent holds a socket, not a thread, and is closed after
 * {@link #IDLE_TIMEOUT}; requests run on a bounded pool of {@link #MAX_THREADS} threads (its queue is
 * Jetty's default: Jetty queues its own selector jobs there and warns against bounding it). Routes are exact: any other path answers 404, another method on a known path 405.
 */
public final class HttpEndpoint {
    private static final Logger log = LoggerFactory.getLogger(HttpEndpoint.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A connection that sends nothing for this long (mid-request or between requests) is closed. */
    public static final Duration IDLE_TIMEOUT = Duration.ofSeconds(30);
    /**
     * Worker threads: probes and scrapes are short; the dashboard's pages are a few queries each. Jetty
     * takes one for the acceptor and one per selector out of these.
     */
    static final int MAX_THREADS = 16;
    static final int MIN_THREADS = 2;

    private final Javalin server;
    private final String host;

    private HttpEndpoint(Javalin server, String host) {
        this.server = server;
        this.host = host;
    }

    /** Starts the endpoint for a running node unless {@code PGDISPATCH_HTTP_PORT=off}; port 0 picks a free one. */
    public static HttpEndpoint startIfEnabled(DispatcherConfig cfg, Dispatcher d) {
        return startIfEnabled(cfg, d.metrics().registry(), () -> d, () -> "node not started");
    }

    /**
     * Starts the endpoint before the node exists (the database may still be unreachable): until
     * {@code node} supplies one, {@code /health/ready} answers 503 with {@code startupProblem}.
     */
    public static HttpEndpoint startIfEnabled(DispatcherConfig cfg, MeterRegistry registry, Supplier<Dispatcher> node,
                                              Supplier<String> startupProblem) {
        return startIfEnabled(cfg, registry, node, startupProblem, List.of());
    }

    /** As above, also serving {@code more} (each adds its routes to the server's configuration). */
    public static HttpEndpoint startIfEnabled(DispatcherConfig cfg, MeterRegistry registry, Supplier<Dispatcher> node,
                                              Supplier<String> startupProblem, List<Consumer<JavalinConfig>> more) {
        if (cfg.httpPort() == DispatcherConfig.HTTP_OFF) return null;
        return start(cfg.httpHost(), cfg.httpPort(), IDLE_TIMEOUT, c -> {
            c.routes.get("/metrics", ctx -> metrics(ctx, registry));
            c.routes.get("/health/live", HttpEndpoint::live);
            c.routes.get("/health/ready", ctx -> ready(ctx, node.get(), startupProblem));
            more.forEach(m -> m.accept(c));
        });
    }

    /**
     * A server on {@code host:port} with {@code routes}; a host that does not resolve or an address
     * in use is a {@link ConfigException} naming {@code PGDISPATCH_HTTP_HOST} / {@code PGDISPATCH_HTTP_PORT}.
     */
    public static HttpEndpoint start(String host, int port, Duration idleTimeout, Consumer<JavalinConfig> routes) {
        try {
            InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new ConfigException("PGDISPATCH_HTTP_HOST=" + host + " does not resolve to an address of this machine"
                    + " (" + e.getMessage() + "); use an IP address such as 127.0.0.1 or 0.0.0.0, or a resolvable host name");
        }
        QueuedThreadPool pool = new QueuedThreadPool(MAX_THREADS, MIN_THREADS);
        pool.setName("pgdispatch-http");
        pool.setDaemon(true);
        Javalin app = Javalin.create(c -> {
            c.startup.showJavalinBanner = false;
            c.startup.showOldJavalinVersionWarning = false;
            c.jetty.threadPool = pool;
            c.http.prefer405over404 = true;
            c.router.ignoreTrailingSlashes = false;
            c.jetty.addConnector((server, httpConfig) -> {
                httpConfig.setSendServerVersion(false);
                ServerConnector sc = new ServerConnector(server, 1, 1, new HttpConnectionFactory(httpConfig));
                sc.setHost(host);
                sc.setPort(port);
                sc.setIdleTimeout(idleTimeout.toMillis());
                return sc;
            });
            c.routes.error(404, ctx -> ctx.contentType("text/plain; charset=utf-8")
                    .result("not found: " + ctx.method() + " " + ctx.path() + "\n"));
            c.routes.error(405, ctx -> ctx.contentType("text/plain; charset=utf-8")
                    .result("method not allowed: " + ctx.method() + " " + ctx.path() + "\n"));
            routes.accept(c);
        });
        try {
            app.start();
        } catch (RuntimeException e) {
            stopQuietly(app);
            if (causedBy(e, BindException.class)) {
                throw new ConfigException("PGDISPATCH_HTTP_PORT=" + port + ": address " + host + ":" + port
                        + " is already in use (PGDISPATCH_HTTP_HOST=" + host + "); stop what holds it, choose another port,"
                        + " or PGDISPATCH_HTTP_PORT=off");
            }
            throw e;
        }
        log.info("http: serving on {}:{}", host, app.port());
        return new HttpEndpoint(app, host);
    }

    private static void metrics(Context ctx, MeterRegistry registry) {
        if (registry instanceof PrometheusMeterRegistry p) {
            ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(p.scrape());
        } else {
            ctx.status(503).contentType("text/plain").result("metrics registry is not Prometheus\n");
        }
    }

    private static void live(Context ctx) {
        ctx.contentType("application/json").result("{\"status\":\"up\"}\n");
    }

    /**
     * 200 with the node id while {@link Dispatcher#health()} is ready; else 503 with every problem, as one
     * {@code reason} ({@code part: reason; ...}) and as a list. Before the node exists, the startup problem.
     */
    private static void ready(Context ctx, Dispatcher d, Supplier<String> startupProblem) throws Exception {
        Health h = d == null ? new Health(List.of(new Health.Problem(Health.Part.LIFECYCLE, startupProblem.get())))
                : d.health();
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("status", h.ready() ? "ready" : "not_ready");
        if (d != null) body.put("node", d.nodeId());
        if (!h.ready()) {
            body.put("reason", h.reason());
            body.put("problems", h.problems().stream().map(p -> {
                Map<String, String> x = new LinkedHashMap<>();
                x.put("part", p.part().tag());
                x.put("reason", p.reason());
                return x;
            }).toList());
        }
        ctx.status(h.ready() ? 200 : 503).contentType("application/json").result(JSON.writeValueAsString(body) + "\n");
    }

    public int port() {
        return server.port();
    }

    /** The address the server listens on, as a base URL ({@code http://127.0.0.1:9464}). */
    public String baseUrl() {
        String h = host.contains(":") ? "[" + host + "]" : host;
        return "http://" + (host.equals("0.0.0.0") ? "127.0.0.1" : h) + ":" + port();
    }

    /** Stops accepting, closes connections and ends the worker threads; idempotent. */
    public void stop() {
        stopQuietly(server);
    }

    private static void stopQuietly(Javalin app) {
        try {
            app.stop();
        } catch (RuntimeException e) {
            log.warn("http: stop failed: {}", e.toString());
        }
    }

    private static boolean causedBy(Throwable e, Class<? extends Throwable> type) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (type.isInstance(t)) return true;
        }
        return false;
    }
}

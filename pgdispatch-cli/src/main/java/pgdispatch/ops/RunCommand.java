package pgdispatch.ops;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.ConfigException;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Database;
import pgdispatch.ui.Dashboard;

/** {@code run}: runs a node until SIGTERM/SIGINT, then drains and stops. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run a dispatcher node until SIGTERM: your handlers (--handlers jars, found via ServiceLoader)"
                + " plus the built-in demo kinds unless PGDISPATCH_BUILTIN_HANDLERS=false.")
final class RunCommand implements Callable<Integer> {
    private static final Logger log = LoggerFactory.getLogger(RunCommand.class);

    @Option(names = "--queues", paramLabel = "a,b", description = "Queues to serve (TASK_QUEUES)")
    String queues;

    @Option(names = "--concurrency", paramLabel = "N", description = "Worker slots (TASK_CONCURRENCY)")
    String concurrency;

    @Option(names = "--node-id", paramLabel = "ID", description = "Node id (DISPATCHER_NODE_ID)")
    String nodeId;

    @Option(names = "--force", description = "Take the node id even if another process seems to hold it")
    boolean force;

    @Option(names = "--handlers", paramLabel = "PATH",
            description = "Your handler jars, or directories of jars, separated by , or : (PGDISPATCH_HANDLERS)")
    String handlers;

    @Option(names = "--migrate", description = "Apply pending migrations first (creating the database when missing)")
    boolean migrate;

    @Override
    public Integer call() throws Exception {
        Map<String, String> opts = new HashMap<>();
        opts.put("TASK_QUEUES", queues);
        opts.put("TASK_CONCURRENCY", concurrency);
        opts.put("DISPATCHER_NODE_ID", nodeId);
        DispatcherConfig cfg = Env.config(opts);
        List<TaskHandler> found = handlers(handlers != null ? handlers : Env.get().get(HandlerJars.VARIABLE));
        boolean builtins = builtins(Env.get().get(BUILTINS));
        if (found.isEmpty() && !builtins) {
            throw new ConfigException(BUILTINS + "=false and no handler found: give your handler jars with --handlers"
                    + " or " + HandlerJars.VARIABLE);
        }
        var registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        AtomicReference<Dispatcher> node = new AtomicReference<>();
        AtomicReference<String> problem = new AtomicReference<>("starting");
        CountDownLatch done = new CountDownLatch(1);
        // the dashboard reads through the node's pool once the node has one; until then its pages say why not
        List<java.util.function.Consumer<io.javalin.config.JavalinConfig>> ui = Env.uiEnabled()
                ? List.of(Dashboard.forNode(node::get, problem::get, cfg, Env.uiToken())::addTo)
                : List.of();
        HttpEndpoint http = HttpEndpoint.startIfEnabled(cfg, registry, node::get, problem::get, ui);
        Thread hook = new Thread(() -> {
            done.countDown();
            Dispatcher d = node.get();
            if (d != null) d.stop();
            if (http != null) http.stop();
        }, "pgdispatch-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        long backoffMs = 1000;
        // --migrate: once, inside the loop, so an unreachable database is waited for like the node's start
        // (issue 11 item 10: it migrated before the loop, exiting when unreachable, and again inside it)
        boolean migrated = !migrate;
        while (done.getCount() > 0) {
            Dispatcher d = null;
            try {
                if (!migrated) {
                    migrate(cfg);
                    migrated = true;
                }
                d = Dispatcher.builder(cfg).handlers(found).builtins(builtins).force(force).meterRegistry(registry).build();
                // visible before start(): a SIGTERM meanwhile stops it (start() gives up), readiness says "starting"
                node.set(d);
                d.start();
                break;
            } catch (RuntimeException | java.sql.SQLException e) {
                node.set(null);
                if (d != null) d.halt();
                String why = unreachable(e);
                if (why == null) {
                    if (http != null) http.stop();
                    Runtime.getRuntime().removeShutdownHook(hook);
                    if (e instanceof java.sql.SQLException sql) throw new IllegalStateException(sql.getMessage(), sql);
                    throw e;
                }
                problem.set("database unreachable: " + why);
                log.warn("run: database {} unreachable ({}); retrying in {} s", cfg.databaseUrl(), why, backoffMs / 1000);
                if (done.await(backoffMs, TimeUnit.MILLISECONDS)) break;
                backoffMs = Math.min(backoffMs * 2, 30_000);
            }
        }
        done.await();
        return Main.OK;
    }

    /** The variable that switches the demo kinds (noop, sleep, echo, fail) off: {@code false} in production. */
    static final String BUILTINS = "PGDISPATCH_BUILTIN_HANDLERS";

    static boolean builtins(String raw) {
        if (raw == null) return true;
        return switch (raw.strip().toLowerCase(java.util.Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new ConfigException(BUILTINS + "=" + raw + " must be true or false");
        };
    }

    /** Handlers on the service's own class path (ServiceLoader), then those of the jars in {@code spec}. */
    static List<TaskHandler> handlers(String spec) {
        List<TaskHandler> all = new java.util.ArrayList<>(
                ServiceLoader.load(TaskHandler.class).stream().map(ServiceLoader.Provider::get).toList());
        if (spec != null && !spec.isBlank()) {
            HandlerJars.Found f = HandlerJars.load(spec, RunCommand.class.getClassLoader());
            log.info("run: {}={}: loaded {} handler(s) from {} jar(s): {}", HandlerJars.VARIABLE, spec, f.handlers().size(),
                    f.jars().size(), f.sourceByKind());
            all.addAll(f.handlers());
        }
        return all;
    }

    private static void migrate(DispatcherConfig cfg) throws java.sql.SQLException {
        Database.createIfMissing(cfg.databaseUrl());
        try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-migrate")) {
            var r = db.migrate();
            log.info("run: --migrate applied {} migration(s); schema version {}", r.migrationsExecuted, r.targetSchemaVersion);
        }
    }

    /**
     * Why the database could not be reached, when that is what {@code e} says (connection refused, host
     * unknown, server starting or shutting down, session terminated, pooled connection closed); null for
     * every other failure, which stops the node.
     * The password is never part of these messages: the driver gets it as a property, not in the URL.
     */
    static String unreachable(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.net.ConnectException || t instanceof java.net.UnknownHostException
                    || t instanceof java.net.NoRouteToHostException || t instanceof java.net.SocketTimeoutException) {
                return t.getClass().getSimpleName() + ": " + t.getMessage();
            }
            // as StoreException.connectionLost(): class 08, class 57P (the server shut down or terminated the
            // session, or is starting), or no state at all (the pool's "Connection is closed")
            if (t instanceof java.sql.SQLException sql && (sql.getSQLState() == null
                    || sql.getSQLState().startsWith("08") || sql.getSQLState().startsWith("57P"))) {
                return (sql.getSQLState() == null ? "SQLException" : "SQLState " + sql.getSQLState()) + ": " + sql.getMessage();
            }
        }
        return null;
    }
}

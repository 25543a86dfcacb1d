package pgdispatch.ops;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import pgdispatch.config.ConfigException;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import pgdispatch.store.Database;
import pgdispatch.ui.Dashboard;

/** {@code ui}: the web dashboard alone, for operators who run no node here; until SIGTERM/SIGINT. */
@Command(name = "ui", mixinStandardHelpOptions = true,
        description = "Serve the web dashboard on PGDISPATCH_HTTP_HOST:PGDISPATCH_HTTP_PORT (127.0.0.1:9464) without"
                + " running a node, until SIGTERM. Read-only unless PGDISPATCH_UI_TOKEN is set.")
final class UiCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--host", paramLabel = "ADDR", description = "Address to listen on (PGDISPATCH_HTTP_HOST, default 127.0.0.1)")
    String host;

    @Option(names = "--port", paramLabel = "N", description = "Port to listen on (PGDISPATCH_HTTP_PORT, default 9464; 0 picks a free one)")
    String port;

    @Override
    public Integer call() throws Exception {
        Map<String, String> opts = new HashMap<>();
        opts.put("PGDISPATCH_HTTP_HOST", host);
        opts.put("PGDISPATCH_HTTP_PORT", port);
        DispatcherConfig cfg = Env.config(opts);
        if (cfg.httpPort() == DispatcherConfig.HTTP_OFF) {
            throw new ConfigException("PGDISPATCH_HTTP_PORT=off: the dashboard needs a port (pass --port N)");
        }
        String token = Env.uiToken();
        AtomicReference<Database> database = new AtomicReference<>();
        // the token is checked here, before the database is touched
        Dashboard dashboard = new Dashboard(database::get, cfg, token);
        try (Database db = TasksCommand.open("ui")) {
            database.set(db);
            HttpEndpoint http = dashboard.serve(cfg.httpHost(), cfg.httpPort());
            CountDownLatch done = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                http.stop();
                done.countDown();
            }, "pgdispatch-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            spec.commandLine().getOut().printf("pgdispatch ui: %s%s/ (%s; database %s)%n", http.baseUrl(), Dashboard.MOUNT,
                    token == null ? "read-only: set PGDISPATCH_UI_TOKEN to enable actions" : "actions enabled after sign-in",
                    cfg.databaseUrl());
            spec.commandLine().getOut().flush();
            done.await();
            return Main.OK;
        }
    }
}

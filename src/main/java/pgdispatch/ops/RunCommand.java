package pgdispatch.ops;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Database;

/** {@code run}: runs a node until SIGTERM/SIGINT, then drains and stops. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run a dispatcher node (built-in kinds plus handlers found via ServiceLoader) until SIGTERM.")
final class RunCommand implements Callable<Integer> {
    @Option(names = "--queues", paramLabel = "a,b", description = "Queues to serve (TASK_QUEUES)")
    String queues;

    @Option(names = "--concurrency", paramLabel = "N", description = "Worker slots (TASK_CONCURRENCY)")
    String concurrency;

    @Option(names = "--node-id", paramLabel = "ID", description = "Node id (DISPATCHER_NODE_ID)")
    String nodeId;

    @Option(names = "--force", description = "Take the node id even if another process seems to hold it")
    boolean force;

    @Option(names = "--migrate", description = "Apply pending migrations first (creating the database when missing)")
    boolean migrate;

    @Override
    public Integer call() throws Exception {
        Map<String, String> opts = new HashMap<>();
        opts.put("TASK_QUEUES", queues);
        opts.put("TASK_CONCURRENCY", concurrency);
        opts.put("DISPATCHER_NODE_ID", nodeId);
        DispatcherConfig cfg = Env.config(opts);
        if (migrate) {
            Database.createIfMissing(cfg.databaseUrl());
            try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-migrate")) {
                db.migrate();
            }
        }
        List<TaskHandler> found = ServiceLoader.load(TaskHandler.class).stream().map(ServiceLoader.Provider::get).toList();
        Dispatcher d = Dispatcher.builder(cfg).handlers(found).force(force)
                .meterRegistry(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT)).build();
        CountDownLatch done = new CountDownLatch(1);
        HttpEndpoint http = null;
        try {
            d.start();
            http = HttpEndpoint.startIfEnabled(cfg, d);
            HttpEndpoint h = http;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                d.stop();
                if (h != null) h.stop();
                done.countDown();
            }, "pgdispatch-shutdown"));
            done.await();
            return Main.OK;
        } catch (RuntimeException | InterruptedException e) {
            d.halt();
            if (http != null) http.stop();
            throw e;
        }
    }
}

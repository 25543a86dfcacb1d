package pgdispatch.spring;

import io.micrometer.core.instrument.MeterRegistry;
import java.util.List;
import org.springframework.context.SmartLifecycle;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Database;
import pgdispatch.store.Schedule;

/**
 * The node as a Spring lifecycle bean: starts once the context is refreshed (every handler bean exists),
 * stops gracefully when it closes (running tasks drain for {@code pgdispatch.task-drain-s}, the rest are
 * released), before the pool it uses is closed.
 */
public class PgdispatchNode implements SmartLifecycle {
    private final Dispatcher dispatcher;
    private volatile boolean running;

    PgdispatchNode(DispatcherConfig cfg, Database database, List<TaskHandler> handlers, boolean builtins,
                   MeterRegistry registry, RetryPolicy retryPolicy, List<Schedule> schedules) {
        var b = Dispatcher.builder(cfg).database(database).handlers(handlers).builtins(builtins).schedules(schedules);
        if (retryPolicy != null) b.retryPolicy(retryPolicy);
        if (registry != null) b.meterRegistry(registry);
        this.dispatcher = b.build();
    }

    public Dispatcher dispatcher() {
        return dispatcher;
    }

    @Override
    public void start() {
        try {
            dispatcher.start();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("pgdispatch: interrupted while starting node " + dispatcher.nodeId(), e);
        }
        running = true;
    }

    @Override
    public void stop() {
        dispatcher.stop();
        running = false;
    }

    @Override
    public boolean isRunning() {
        return running;
    }
}

package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.InvalidTaskException;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.testing.TestDatabase;

/** What a user's own handler meets: typed payloads both ways, TaskClient from a DataSource, the unhandled-kind warning. */
class UserHandlersTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    record Invoice(String customer, int cents, List<String> lines) {}

    private Dispatcher node;
    private final MeterRegistry registry = new SimpleMeterRegistry();

    @BeforeEach
    void start() throws InterruptedException {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        TaskHandler invoices = new TaskHandler() {
            @Override
            public String kind() {
                return "invoice";
            }

            @Override
            public Object handle(TaskContext ctx) {
                Invoice inv = ctx.payload(Invoice.class);
                return Map.of("total", inv.cents(), "lines", inv.lines().size(), "for", inv.customer());
            }
        };
        node = Dispatcher.builder(db.config().withNode("node-a", List.of("default"), 2)
                        .withTimings(Duration.ofSeconds(4), Duration.ofSeconds(1), Duration.ofSeconds(8), Duration.ofSeconds(2))
                        .withPollInterval(Duration.ofMillis(200)))
                .handler(invoices).builtins(false).meterRegistry(registry)
                .unhandledKindsInterval(Duration.ofMillis(200)).build().start();
    }

    @AfterEach
    void stop() {
        node.halt();
    }

    private String status(long id) {
        return (String) db.rows("SELECT status FROM tasks WHERE id = " + id).get(0).get("status");
    }

    @Test
    void aRecordPayloadIsSerialisedByTheClientAndReadBackByTheHandler() {
        TaskClient client = TaskClient.of(db.database().dataSource());
        long id = client.enqueue("invoice", new Invoice("ACME", 1250, List.of("a", "b")));

        await().atMost(15, TimeUnit.SECONDS).until(() -> status(id).equals("succeeded"));
        assertThat(db.rows("SELECT payload::text AS p, result::text AS r FROM tasks WHERE id = " + id).get(0))
                .containsEntry("p", "{\"cents\": 1250, \"lines\": [\"a\", \"b\"], \"customer\": \"ACME\"}")
                .containsEntry("r", "{\"for\": \"ACME\", \"lines\": 2, \"total\": 1250}");
    }

    @Test
    void aPayloadThatDoesNotFitTheHandlersTypeFailsAtOnceNamingTheType() {
        long id = TaskClient.of(db.database().dataSource()).enqueue("invoice", Map.of("cents", "many"));

        await().atMost(15, TimeUnit.SECONDS).until(() -> status(id).equals("failed"));
        assertThat((String) db.rows("SELECT last_error FROM tasks WHERE id = " + id).get(0).get("last_error"))
                .contains("task " + id + " (invoice): payload does not fit " + Invoice.class.getName());
        assertThat(db.count("tasks WHERE attempts = 1 AND id = " + id)).isOne();
    }

    @Test
    void anObjectJacksonCannotSerialiseIsRefusedBeforeTheDatabase() {
        assertThatThrownBy(() -> TaskClient.Enqueue.of("invoice", new Object()))
                .isInstanceOf(InvalidTaskException.class)
                .hasMessageStartingWith("payload of type java.lang.Object cannot be serialised to JSON: No serializer found");
        assertThatThrownBy(() -> TaskClient.of(db.database().dataSource()).enqueue("invoice", List.of(1, 2)))
                .isInstanceOf(InvalidTaskException.class).hasMessage("payload must be a JSON object ({...}), got array");
    }

    @Test
    void pendingTasksOfAKindNoLiveNodeHandlesAreCountedByKind() {
        TaskClient client = TaskClient.of(db.database().dataSource());
        client.enqueue("invoice.v2", Map.of());
        client.enqueue("invoice.v2", Map.of());

        await().atMost(15, TimeUnit.SECONDS).until(() -> {
            var g = registry.find("pgdispatch.tasks.unhandled").tag("kind", "invoice.v2").gauge();
            return g != null && g.value() == 2.0;
        });
        db.exec("UPDATE tasks SET status = 'cancelled', finished_at = now() WHERE kind = 'invoice.v2'");
        await().atMost(15, TimeUnit.SECONDS).until(() ->
                registry.find("pgdispatch.tasks.unhandled").tag("kind", "invoice.v2").gauge().value() == 0.0);
    }
}

package pgdispatch.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.actuate.health.Status;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Service;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Transactional;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.testing.PgServer;

/**
 * The starter in a real Spring Boot application on the real PostgreSQL: the application's own Flyway
 * migrations and pgdispatch's in one database and schema, a handler bean, enqueue in the application's
 * transaction, the application's MeterRegistry, Actuator health. One context for the class (they are slow).
 */
@org.springframework.test.annotation.DirtiesContext(classMode = org.springframework.test.annotation.DirtiesContext.ClassMode.AFTER_CLASS)
@SpringBootTest(classes = {PgdispatchAutoConfigurationTest.App.class, PgdispatchAutoConfigurationTest.DropDatabase.class}, properties = {
        "pgdispatch.dispatcher-node-id=spring-a", "pgdispatch.task-poll-ms=200", "pgdispatch.task-renew-s=1",
        "pgdispatch.task-lease-s=5", "pgdispatch.task-drain-s=1", "pgdispatch.task-concurrency=2",
        "pgdispatch.schedules.nightly-report.cron=0 30 2 * * ?", "pgdispatch.schedules.nightly-report.zone=Europe/Berlin",
        "pgdispatch.schedules.nightly-report.kind=greet", "pgdispatch.schedules.nightly-report.payload={\"orderId\": 0, \"item\": \"report\"}",
        "pgdispatch.schedules.nightly-report.backfill=2"})
class PgdispatchAutoConfigurationTest {
    static final String DB = "pgd_t_spring_" + Long.toHexString(System.nanoTime());
    static final DatabaseUrl URL = PgServer.get().createEmpty(DB);

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry r) {
        r.add("spring.datasource.url", URL::jdbcUrl);
        r.add("spring.datasource.username", URL::user);
    }

    /**
     * Drops the database when the context closes (after the class: @DirtiesContext), which is after the
     * node stopped: lifecycle beans stop before any bean is destroyed. Dropped from @AfterAll instead,
     * the cached context's node would run on against a dropped database until the JVM exits.
     */
    @org.springframework.boot.test.context.TestConfiguration
    static class DropDatabase {
        @org.springframework.context.annotation.Bean
        org.springframework.beans.factory.DisposableBean dropTestDatabase() {
            return () -> PgServer.get().drop(DB);
        }
    }

    /** Payload of the application's task kind: a typed record, serialised by TaskClient. */
    record Greeting(long orderId, String item) {}

    @SpringBootApplication
    static class App {
        @Bean
        MeterRegistry meterRegistry() {
            return new SimpleMeterRegistry();
        }

        @Bean
        TaskHandler greet() {
            return new TaskHandler() {
                @Override
                public String kind() {
                    return "greet";
                }

                @Override
                public Object handle(TaskContext ctx) {
                    Greeting g = ctx.payload(Greeting.class);
                    ctx.heartbeat(Map.of("step", 1), "greeting");
                    return Map.of("text", "thanks for order " + g.orderId() + " (" + g.item() + ")");
                }
            };
        }

        @Bean
        pgdispatch.store.Schedule hourly() {
            return pgdispatch.store.Schedule.every("hourly-greeting", java.time.Duration.ofHours(1), "greet").queue("default");
        }

        @Bean
        Orders orders(JdbcTemplate jdbc, TaskClient tasks) {
            return new Orders(jdbc, tasks);
        }
    }

    @Service
    static class Orders {
        final JdbcTemplate jdbc;
        final TaskClient tasks;

        Orders(JdbcTemplate jdbc, TaskClient tasks) {
            this.jdbc = jdbc;
            this.tasks = tasks;
        }

        /** The order row and its task commit together, or neither does. */
        @Transactional
        public long place(String item, boolean fail) {
            Long id = jdbc.queryForObject("INSERT INTO orders (item) VALUES (?) RETURNING id", Long.class, item);
            long task = tasks.enqueue("greet", new Greeting(id, item));
            if (fail) throw new IllegalStateException("payment declined");
            return task;
        }
    }

    @Autowired
    Orders orders;
    @Autowired
    JdbcTemplate jdbc;
    @Autowired
    MeterRegistry registry;
    @Autowired
    PgdispatchHealthIndicator health;

    @Test
    void aTaskEnqueuedInTheApplicationsTransactionRunsOnItsHandlerBean() {
        long id = orders.place("book", false);

        await().atMost(20, TimeUnit.SECONDS).until(() -> "succeeded".equals(
                jdbc.queryForObject("SELECT status FROM tasks WHERE id = ?", String.class, id)));
        assertThat(jdbc.queryForObject("SELECT result->>'text' FROM tasks WHERE id = ?", String.class, id))
                .isEqualTo("thanks for order 1 (book)");
        assertThat(registry.find("pgdispatch.tasks.succeeded").tag("kind", "greet").counter().count()).isEqualTo(1.0);
    }

    @Test
    void aRolledBackTransactionLeavesNeitherTheOrderNorTheTask() {
        long before = jdbc.queryForObject("SELECT count(*) FROM tasks", Long.class);
        assertThatThrownBy(() -> orders.place("pen", true)).hasMessage("payment declined");
        assertThat(jdbc.queryForObject("SELECT count(*) FROM tasks", Long.class)).isEqualTo(before);
        assertThat(jdbc.queryForObject("SELECT count(*) FROM orders WHERE item = 'pen'", Long.class)).isZero();
    }

    @Test
    void bothMigrationHistoriesLiveSideBySide() {
        assertThat(jdbc.queryForList("SELECT script FROM flyway_schema_history WHERE version IS NOT NULL", String.class))
                .containsExactly("V1__orders.sql");
        assertThat(jdbc.queryForObject("SELECT count(*) FROM pgdispatch_schema_history WHERE script = 'V1__tasks.sql'",
                Long.class)).isOne();
    }

    @Test
    void healthIsUpWithTheNodesName() {
        var h = health.health();
        assertThat(h.getStatus()).isEqualTo(Status.UP);
        assertThat(h.getDetails()).containsEntry("node", "spring-a");
    }

    @Test
    void aBadPropertyIsNamedAsAPropertyAndNothingStarts() {
        new ApplicationContextRunner().withConfiguration(AutoConfigurations.of(PgdispatchAutoConfiguration.class))
                .withPropertyValues("pgdispatch.database-url=" + URL.jdbcUrl(), "pgdispatch.task-lease-s=-5",
                        "pgdispatch.task-renew-s=600")
                .run(ctx -> assertThat(ctx).hasFailed().getFailure().rootCause()
                        .hasMessage("pgdispatch.task-lease-s=-5 must be a positive whole number of seconds (at most 31536000)"));
    }

    @Test
    void schedulesFromPropertiesAndBeansAreStoredAtStart() {
        var rows = jdbc.queryForList("SELECT name, cron, every_s, time_zone, kind, missed, backfill_max, enabled, changed_by"
                + " FROM schedules ORDER BY name");
        assertThat(rows).hasSize(2);
        assertThat(rows.get(0)).containsEntry("name", "hourly-greeting").containsEntry("every_s", 3600)
                .containsEntry("missed", "skip").containsEntry("changed_by", "code:spring-a");
        assertThat(rows.get(1)).containsEntry("name", "nightly-report").containsEntry("cron", "0 30 2 * * ?")
                .containsEntry("time_zone", "Europe/Berlin").containsEntry("missed", "backfill").containsEntry("backfill_max", 2)
                .containsEntry("enabled", true);
        await().atMost(10, TimeUnit.SECONDS).until(() -> jdbc.queryForObject(
                "SELECT count(*) FROM schedules WHERE next_fire_at IS NOT NULL", Long.class) == 2);
    }

    @Test
    void aBadScheduleIsNamedByItsPropertyValueAndRuleAndNothingStarts() {
        new ApplicationContextRunner().withConfiguration(AutoConfigurations.of(PgdispatchAutoConfiguration.class))
                .withPropertyValues("pgdispatch.database-url=" + URL.jdbcUrl() + "?user=" + URL.user(),
                        "pgdispatch.dispatcher-node-id=spring-c", "pgdispatch.builtin-handlers=true",
                        "pgdispatch.schedules.a.cron=0 25 * * *", "pgdispatch.schedules.a.kind=noop",
                        "pgdispatch.schedules.b.every=soon", "pgdispatch.schedules.b.kind=noop",
                        "pgdispatch.schedules.c.every=1m", "pgdispatch.schedules.c.kind=noop", "pgdispatch.schedules.c.max-attempts=0",
                        "pgdispatch.schedules.d.kind=noop")
                .run(ctx -> assertThat(ctx).hasFailed().getFailure().rootCause().hasMessage(String.join("\n",
                        "pgdispatch.schedules.a.cron='0 25 * * *' is not a valid 5-field cron expression: Value 25 not in range [0, 23]",
                        "pgdispatch.schedules.b.every='soon' must be a duration such as 90s, 15m, 2h, 1d or PT15M",
                        "pgdispatch.schedules.c.max-attempts=0 must be from 1 to 1000",
                        "pgdispatch.schedules.d needs exactly one of pgdispatch.schedules.d.cron and pgdispatch.schedules.d.every, got neither")));
        assertThat(jdbc.queryForObject("SELECT count(*) FROM dispatcher_nodes WHERE node_id = 'spring-c'", Long.class)).isZero();
    }

    @Test
    void closingTheContextStopsTheNodeGracefully() {
        var runner = new ApplicationContextRunner().withConfiguration(AutoConfigurations.of(PgdispatchAutoConfiguration.class))
                .withPropertyValues("pgdispatch.database-url=" + URL.jdbcUrl() + "?user=" + URL.user(),
                        "pgdispatch.dispatcher-node-id=spring-b", "pgdispatch.builtin-handlers=true",
                        "pgdispatch.task-drain-s=1");
        runner.run(ctx -> assertThat(ctx.getBean(PgdispatchNode.class).isRunning()).isTrue());
        assertThat(jdbc.queryForObject("SELECT stopped_at IS NOT NULL FROM dispatcher_nodes WHERE node_id = 'spring-b'",
                Boolean.class)).isTrue();
    }

    @Test
    void everyNodeSettingHasItsProperty() {
        // a variable added to DispatcherConfig without a property here fails this (the HTTP endpoint is the CLI's)
        var variables = new java.util.TreeSet<>(pgdispatch.config.DispatcherConfig.defaults(URL).describe().keySet());
        variables.removeIf(v -> v.startsWith("PGDISPATCH_HTTP_"));
        assertThat(PgdispatchProperties.NAMES.keySet()).containsExactlyInAnyOrderElementsOf(variables);
    }

    @Test
    void propertyNamesFollowTheEnvironmentVariables() {
        assertThat(PgdispatchAutoConfiguration.asProperty("TASK_RENEW_S=600 must be shorter than TASK_LEASE_S=600"))
                .isEqualTo("pgdispatch.task-renew-s=600 must be shorter than pgdispatch.task-lease-s=600");
    }
}

package acme.shop;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.testing.PgServer;

/** The example shop on the real PostgreSQL: its own Flyway V1 and pgdispatch's in one database and schema. */
@org.springframework.test.annotation.DirtiesContext(classMode = org.springframework.test.annotation.DirtiesContext.ClassMode.AFTER_CLASS)
@SpringBootTest(classes = {ShopApplication.class, ShopApplicationTest.DropDatabase.class}, properties = {"pgdispatch.dispatcher-node-id=shop-1", "pgdispatch.task-poll-ms=200"})
class ShopApplicationTest {
    static final String DB = "pgd_t_example_shop_" + Long.toHexString(System.nanoTime());
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

    @Autowired
    Orders orders;
    @Autowired
    JdbcTemplate jdbc;

    @Test
    void anOrderCommitsWithItsReceiptTaskWhichRuns() {
        long order = orders.place("teapot");

        await().atMost(30, TimeUnit.SECONDS).until(() -> jdbc.queryForObject(
                "SELECT receipt_sent IS NOT NULL FROM orders WHERE id = ?", Boolean.class, order));
        // the handler marks the order before it returns; its outcome is written by the completer just after
        await().atMost(30, TimeUnit.SECONDS).until(() -> jdbc.queryForObject(
                "SELECT status NOT IN ('pending', 'running') FROM tasks WHERE idempotency_key = ?", Boolean.class,
                "receipt-" + order));
        var task = jdbc.queryForMap("SELECT status, result::text AS result, (progress->'checkpoint')::text AS progress FROM tasks"
                + " WHERE idempotency_key = ?", "receipt-" + order);
        System.out.println("shop example: order " + order + " -> task " + task);
        assertThat(task).containsEntry("status", "succeeded").containsEntry("progress", "{\"step\": \"rendered\"}");
        assertThat((String) task.get("result")).isEqualTo("{\"sent\": true, \"order\": " + order + "}");
    }

    @Test
    void aFailedOrderLeavesNoTask() {
        long before = jdbc.queryForObject("SELECT count(*) FROM tasks", Long.class);
        assertThatThrownBy(() -> orders.place(" ")).hasMessage("an order needs an item");
        assertThat(jdbc.queryForObject("SELECT count(*) FROM tasks", Long.class)).isEqualTo(before);
    }

    @Test
    void theShopsHistoryAndPgdispatchsAreSeparate() {
        assertThat(jdbc.queryForList("SELECT script FROM flyway_schema_history WHERE version IS NOT NULL", String.class))
                .containsExactly("V1__orders.sql");
        assertThat(jdbc.queryForObject("SELECT count(*) FROM pgdispatch_schema_history WHERE success AND version IS NOT NULL",
                Long.class)).isGreaterThanOrEqualTo(7);
    }
}

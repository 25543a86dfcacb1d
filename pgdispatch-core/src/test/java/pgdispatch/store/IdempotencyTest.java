package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.util.PSQLException;
import pgdispatch.api.TaskClient;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 14: the same idempotency key with other content is refused, naming the existing task, instead of
 * silently returning the old id; the same content still returns it. Through TaskClient (both enqueue
 * paths) and through the SQL contract's pgdispatch_enqueue, which both follow.
 */
class IdempotencyTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private TaskClient client;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log RESTART IDENTITY");
        client = new TaskClient(new TaskStore(db.database()), 1 << 20);
    }

    private static TaskClient.Enqueue mail(String payload) {
        return TaskClient.Enqueue.of("email.send", payload).idempotencyKey("signup-mail:42");
    }

    @Test
    void sameKeyAndSameContentReturnsTheExistingTask() {
        long first = client.enqueue(mail("{\"to\": \"a@example.com\", \"template\": \"welcome\"}"));
        // the same JSON object written differently, and another priority: a retry of the same request
        long again = client.enqueue(mail("{\"template\":\"welcome\",\"to\":\"a@example.com\"}").priority(5));

        assertThat(again).isEqualTo(first);
        assertThat(db.count("tasks")).isOne();
    }

    @Test
    void sameKeyWithAnotherPayloadIsRefusedNamingTheExistingTask() {
        long first = client.enqueue(mail("{\"to\": \"a@example.com\"}"));

        assertThatThrownBy(() -> client.enqueue(mail("{\"to\": \"b@example.com\"}")))
                .isInstanceOfSatisfying(IdempotencyConflictException.class, e -> {
                    assertThat(e.existingTaskId()).isEqualTo(first);
                    assertThat(e.idempotencyKey()).isEqualTo("signup-mail:42");
                })
                .hasMessage("idempotency_key 'signup-mail:42' is already used by task " + first + " with a different payload");
        assertThat(db.count("tasks")).isOne();
    }

    @Test
    void sameKeyWithAnotherKindOrQueueIsRefusedSayingWhatDiffers() {
        long first = client.enqueue(mail("{}"));

        assertThatThrownBy(() -> client.enqueue(TaskClient.Enqueue.of("sms.send", "{}").queue("urgent")
                .idempotencyKey("signup-mail:42")))
                .isInstanceOf(IdempotencyConflictException.class)
                .hasMessage("idempotency_key 'signup-mail:42' is already used by task " + first
                        + " with kind 'email.send' (not 'sms.send'), queue 'default' (not 'urgent')");
    }

    @Test
    void conflictInTheCallersTransactionIsRefusedToo() throws SQLException {
        long first = client.enqueue(mail("{\"to\": \"a@example.com\"}"));
        try (Connection c = db.database().dataSource().getConnection()) {
            assertThat(client.enqueue(c, mail("{\"to\": \"a@example.com\"}"))).isEqualTo(first);
            assertThatThrownBy(() -> client.enqueue(c, mail("{\"to\": \"c@example.com\"}")))
                    .isInstanceOfSatisfying(IdempotencyConflictException.class,
                            e -> assertThat(e.existingTaskId()).isEqualTo(first));
        }
    }

    @Test
    void sqlContractFunctionInsertsReturnsAndRefuses() throws SQLException {
        long first = (long) db.rows("SELECT pgdispatch_enqueue('email.send', '{\"to\": \"a\"}', 'default', 0, NULL, 5,"
                + " 'k-1') AS id").get(0).get("id");
        long again = (long) db.rows("SELECT pgdispatch_enqueue('email.send', '{\"to\": \"a\"}',"
                + " p_idempotency_key => 'k-1') AS id").get(0).get("id");
        assertThat(again).isEqualTo(first);

        try (Connection c = db.database().dataSource().getConnection(); Statement st = c.createStatement()) {
            assertThatThrownBy(() -> st.executeQuery("SELECT pgdispatch_enqueue('email.send', '{\"to\": \"b\"}',"
                    + " p_idempotency_key => 'k-1')"))
                    .isInstanceOfSatisfying(PSQLException.class, e -> {
                        assertThat(e.getSQLState()).isEqualTo("23505");
                        assertThat(e.getServerErrorMessage().getMessage())
                                .isEqualTo("idempotency_key 'k-1' is already used by task " + first + " with a different payload");
                        assertThat(e.getServerErrorMessage().getDetail()).isEqualTo("existing_task_id=" + first);
                    });
        }
        // without a key it is a plain insert
        db.rows("SELECT pgdispatch_enqueue('email.send') AS id");
        assertThat(db.count("tasks")).isEqualTo(2);
    }
}

package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import pgdispatch.testing.TestDatabase;

/**
 * Producers that bypass TaskClient and INSERT with plain SQL meet the schema's CHECK constraints: a
 * hostile queue or kind name, a payload that is not an object, an out-of-range number is refused by
 * name (SQLSTATE 23514) and nothing is stored; the wake-up notification goes out on the one fixed
 * channel with the (checked) queue name as payload.
 */
class SqlInsertGuardTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log RESTART IDENTITY");
        db.exec("INSERT INTO tasks (queue, kind, payload) VALUES ('default', 'noop', '{\"keep\":1}')");
    }

    @ParameterizedTest(name = "{0}={1} -> {2}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "queue        | x'; DROP TABLE tasks;--                    | tasks_queue_name_check",
            "queue        | naïve                                      | tasks_queue_name_check",
            "queue        | a b                                        | tasks_queue_name_check",
            "queue        | pgdispatch_wakeup\"; NOTIFY \"x            | tasks_queue_name_check",
            "queue        | ``                                         | tasks_queue_name_check",
            "kind         | a;b                                        | tasks_kind_name_check",
            "kind         | \"quoted\"                                 | tasks_kind_name_check",
            "kind         | 日本                                        | tasks_kind_name_check",
            "payload      | [1, 2]                                     | tasks_payload_object_check",
            "payload      | \"text\"                                   | tasks_payload_object_check",
            "payload      | null                                       | tasks_payload_object_check",
            "priority     | 1001                                       | tasks_priority_range_check",
            "priority     | -1001                                      | tasks_priority_range_check",
            "max_attempts | 0                                          | tasks_max_attempts_check",
            "max_attempts | 1001                                       | tasks_max_attempts_check",
            "attempts     | -1                                         | tasks_counts_check",
            "status       | done                                       | tasks_status_check"})
    void plainInsertWithAHostileValueIsRefusedByItsConstraint(String column, String value, String constraint) {
        String before = db.rows("SELECT * FROM tasks ORDER BY id").toString();
        String cast = switch (column) {
            case "payload" -> "?::jsonb";
            case "priority", "max_attempts", "attempts" -> "?::integer";
            default -> "?";
        };
        String sql = column.equals("queue") || column.equals("kind")
                ? "INSERT INTO tasks (" + (column.equals("queue") ? "queue, kind" : "kind, queue") + ") VALUES (" + cast + ", 'x')"
                : "INSERT INTO tasks (queue, kind, " + column + ") VALUES ('default', 'noop', " + cast + ")";

        assertThatThrownBy(() -> {
            try (Connection c = db.database().dataSource().getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setString(1, value);
                ps.executeUpdate();
            }
        }).isInstanceOf(SQLException.class)
                .hasMessageContaining("violates check constraint \"" + constraint + "\"")
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("23514"));
        assertThat(db.rows("SELECT * FROM tasks ORDER BY id").toString()).isEqualTo(before);
    }

    /** V7 rewrote the name checks (regex for the characters, char_length for the limit): same set as V3's. */
    @ParameterizedTest(name = "{0} of {1} characters: accepted={2}")
    @CsvSource(delimiter = '|', textBlock = """
            queue | 100 | true
            queue | 101 | false
            kind  | 200 | true
            kind  | 201 | false
            """)
    void nameChecksAcceptNamesUpToTheirLimitAndNotOneCharacterMore(String column, int length, boolean accepted) {
        String name = "a" + "b.-:_9".repeat(40).substring(0, length - 1);
        String other = column.equals("queue") ? "kind" : "queue";
        String sql = "INSERT INTO tasks (" + column + ", " + other + ") VALUES ('" + name + "', 'x')";
        if (accepted) {
            db.exec(sql);
            assertThat(db.rows("SELECT " + column + " AS v FROM tasks WHERE " + column + " = '" + name + "'")).hasSize(1);
        } else {
            assertThatThrownBy(() -> db.exec(sql)).hasMessageContaining("tasks_" + column + "_name_check");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"'ok-name' || chr(10)", "chr(10) || 'ok-name'", "'ok' || chr(233)", "'ok' || chr(12288)"})
    void nameChecksRefuseANewlineOrANonAsciiCharacterAtEitherEnd(String expression) {
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (queue, kind) VALUES (" + expression + ", 'x')"))
                .hasMessageContaining("tasks_queue_name_check");
        assertThatThrownBy(() -> db.exec("INSERT INTO tasks (queue, kind) VALUES ('q', " + expression + ")"))
                .hasMessageContaining("tasks_kind_name_check");
    }

    @Test
    void insertNotifiesTheFixedChannelWithTheQueueNameAndARefusedInsertNotifiesNothing() throws SQLException {
        try (Connection listener = Database.connect(db.url()); Statement st = listener.createStatement()) {
            st.execute("LISTEN pgdispatch_wakeup");
            PGConnection pg = listener.unwrap(PGConnection.class);

            db.exec("INSERT INTO tasks (queue, kind) VALUES ('orders.eu-1', 'noop')");
            PGNotification[] got = pg.getNotifications(5000);
            assertThat(got).isNotNull().hasSize(1);
            assertThat(got[0].getName()).isEqualTo("pgdispatch_wakeup");
            assertThat(got[0].getParameter()).isEqualTo("orders.eu-1");

            assertThatThrownBy(() -> db.exec("INSERT INTO tasks (queue, kind) VALUES ('x''; NOTIFY evil; --', 'noop')"))
                    .hasMessageContaining("tasks_queue_name_check");
            // notifications arrive in commit order: the next one is from the insert after the refusal
            db.exec("INSERT INTO tasks (queue, kind) VALUES ('after', 'noop')");
            got = pg.getNotifications(5000);
            assertThat(got).isNotNull().extracting(PGNotification::getParameter).containsExactly("after");
        }
    }
}

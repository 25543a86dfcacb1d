package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * A node's pool gives up on a read after PGDISPATCH_SOCKET_TIMEOUT_S (a server that stopped answering
 * looks exactly like a statement that takes longer: pg_sleep stands in for it), fails the statement
 * as a lost connection and goes on with a fresh one. Pools opened without a timeout wait.
 */
class SocketTimeoutTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static void run(Database pool, String sql) throws SQLException {
        try (Connection c = pool.dataSource().getConnection(); Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    @Test
    void aReadLongerThanTheSocketTimeoutFailsAsALostConnectionAndThePoolGoesOn() throws SQLException {
        try (Database pool = Database.open(db.url(), 2, "socket-timeout-test", null, Duration.ofSeconds(1))) {
            assertThatThrownBy(() -> run(pool, "SELECT pg_sleep(4)"))
                    .isInstanceOf(SQLException.class)
                    .satisfies(e -> assertThat(((SQLException) e).getSQLState()).startsWith("08"));
            run(pool, "SELECT 1");
        }
    }

    @Test
    void withoutASocketTimeoutTheSameReadWaits() throws SQLException {
        try (Database pool = Database.open(db.url(), 2, "socket-timeout-test", null, Duration.ZERO)) {
            run(pool, "SELECT pg_sleep(2)");
        }
    }
}

package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.SQLException;
import org.junit.jupiter.api.Test;

/**
 * Regression (found by scripts/chaos on the merged runtime): a node whose session was terminated
 * ({@code pg_terminate_backend}, a server restart) or whose pooled connection was closed while it was
 * starting exited with status 1, instead of waiting for the database like a node that cannot connect
 * at all. The errors had the shapes below: jOOQ's wrapper around SQLSTATE 57P01 during registration,
 * and Flyway's wrapper around the pool's "Connection is closed" (no SQLSTATE) during the schema check.
 */
class ConnectionLostDuringStartTest {
    @Test
    void terminatedSessionDuringStartIsAReasonToRetry() {
        var terminated = new org.jooq.exception.DataAccessException("SQL [select ... from dispatcher_nodes]; FATAL: terminating "
                + "connection due to administrator command",
                new SQLException("FATAL: terminating connection due to administrator command", "57P01"));
        assertThat(RunCommand.unreachable(terminated))
                .isEqualTo("SQLState 57P01: FATAL: terminating connection due to administrator command");
        assertThat(RunCommand.unreachable(new RuntimeException(new SQLException("FATAL: the database system is shutting down", "57P03"))))
                .startsWith("SQLState 57P03");
    }

    @Test
    void closedPoolConnectionDuringTheSchemaCheckIsAReasonToRetry() {
        var closed = new RuntimeException("Unable to read database connection metadata: Connection is closed",
                new SQLException("Connection is closed"));
        assertThat(RunCommand.unreachable(closed)).isEqualTo("SQLException: Connection is closed");
    }

    @Test
    void refusalsThatRetryingCannotCureStillStopTheNode() {
        assertThat(RunCommand.unreachable(new RuntimeException(new SQLException("database \"x\" does not exist", "3D000")))).isNull();
        assertThat(RunCommand.unreachable(new RuntimeException(new SQLException("syntax error", "42601")))).isNull();
        assertThat(RunCommand.unreachable(new IllegalStateException("database x is at schema version 4 but this pgdispatch needs 6")))
                .isNull();
    }
}

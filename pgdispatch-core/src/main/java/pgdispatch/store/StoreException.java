package pgdispatch.store;

import java.sql.SQLException;

/** A statement failed; {@link #connectionLost()} tells a broken connection from a refused statement. */
public final class StoreException extends RuntimeException {
    private final String sqlState;

    public StoreException(SQLException cause) {
        super(cause.getMessage(), cause);
        this.sqlState = cause.getSQLState();
    }

    public String sqlState() {
        return sqlState;
    }

    /**
     * True when the outcome of the statement is unknown to us: the connection broke (class 08), the
     * server shut down or terminated the backend (57P01-57P03), or the pool had no connection to give.
     */
    public boolean connectionLost() {
        return sqlState == null || sqlState.startsWith("08") || sqlState.startsWith("57P");
    }
}

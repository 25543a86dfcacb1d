package pgdispatch.api;

/** Thrown by a handler to fail its task at once, without the retries that remain. */
public class PermanentFailure extends RuntimeException {
    public PermanentFailure(String message) {
        super(message);
    }

    public PermanentFailure(String message, Throwable cause) {
        super(message, cause);
    }
}

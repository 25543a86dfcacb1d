package pgdispatch.api;

/** A task that cannot be enqueued; the message names the field, the value and the rule. */
public final class InvalidTaskException extends IllegalArgumentException {
    private final String field;

    public InvalidTaskException(String field, String message) {
        super(message);
        this.field = field;
    }

    public String field() {
        return field;
    }
}

package pgdispatch.store;

/**
 * An enqueue with an idempotency key already used by a task of another kind, queue or payload: refused
 * (a retry of the same request gets the existing task back; a different task needs another key). The
 * message names the key, the existing task and what differs.
 */
public final class IdempotencyConflictException extends IllegalArgumentException {
    private final String idempotencyKey;
    private final long existingTaskId;

    public IdempotencyConflictException(String idempotencyKey, long existingTaskId, String message) {
        super(message);
        this.idempotencyKey = idempotencyKey;
        this.existingTaskId = existingTaskId;
    }

    public String idempotencyKey() {
        return idempotencyKey;
    }

    public long existingTaskId() {
        return existingTaskId;
    }
}

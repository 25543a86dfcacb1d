package pgdispatch.store;

import java.time.OffsetDateTime;

/**
 * A task to insert, already validated by the client: {@code runAt} null means now, {@code payloadJson}
 * is a JSON object's text, {@code idempotencyKey} null means none, {@code unique} null means not unique,
 * {@code dependencies} null means none.
 */
public record NewTask(String queue, String kind, String payloadJson, int priority, OffsetDateTime runAt,
                      int maxAttempts, String idempotencyKey, UniqueKey unique, Dependencies dependencies) {
    public NewTask(String queue, String kind, String payloadJson, int priority, OffsetDateTime runAt, int maxAttempts,
                   String idempotencyKey, UniqueKey unique) {
        this(queue, kind, payloadJson, priority, runAt, maxAttempts, idempotencyKey, unique, null);
    }

    public NewTask(String queue, String kind, String payloadJson, int priority, OffsetDateTime runAt, int maxAttempts,
                   String idempotencyKey) {
        this(queue, kind, payloadJson, priority, runAt, maxAttempts, idempotencyKey, null, null);
    }
}

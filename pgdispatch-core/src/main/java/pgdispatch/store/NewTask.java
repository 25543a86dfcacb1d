package pgdispatch.store;

import java.time.OffsetDateTime;

/**
 * A task to insert, already validated by the client: {@code runAt} null means now, {@code payloadJson}
 * is a JSON object's text, {@code idempotencyKey} null means none.
 */
public record NewTask(String queue, String kind, String payloadJson, int priority, OffsetDateTime runAt,
                      int maxAttempts, String idempotencyKey) {}

package pgdispatch.store;

import java.time.OffsetDateTime;

/**
 * What the audit trail says of one earlier attempt of a task: who claimed it (owner, lease token,
 * attempt number, when), the first event that ended it ({@code endEvent} with its {@code endDetailJson}
 * and time; null when none was written) and, when the next attempt's claim took its expired lease over,
 * when and by whom.
 */
public record AttemptRecord(String owner, long leaseToken, int attempt, OffsetDateTime startedAt, String endEvent,
                            String endDetailJson, OffsetDateTime endedAt, OffsetDateTime takenOverAt,
                            String takenOverBy) {}

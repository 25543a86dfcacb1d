package pgdispatch.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.Optional;
import pgdispatch.store.AttemptRecord;

/**
 * What the attempt before this one left for it ({@link TaskContext#previousAttempt()}): who ran it, how and
 * why it ended, when, for how long, and the last checkpoint and progress message saved on the task.
 * {@code endedAt} and {@code ran} are null when the ending is {@link Ending#UNKNOWN}.
 */
public record PreviousAttempt(String owner, int attempt, Ending ending, String reason, OffsetDateTime startedAt,
                              OffsetDateTime endedAt, Duration ran, Optional<JsonNode> checkpoint, String lastMessage,
                              OffsetDateTime lastProgressAt) {
    /** How an attempt ended (the audit trail's event, and for a requeue its cause). */
    public enum Ending {
        /** The handler threw (or timed out): {@code reason} is the error; this attempt is its retry. */
        FAILED,
        /** Its node judged it stuck (silent past its cadence bound) and ended it. */
        STUCK,
        /** Its node died, stopped without releasing it, or restarted: the reaper or startup recovery requeued it. */
        NODE_DIED,
        /** Its lease expired: requeued by the reaper, or taken over directly by this attempt's claim. */
        LEASE_EXPIRED,
        /** Its node shut down and released it unfinished (the attempt was given back). */
        RELEASED,
        /** An operator cancelled it (then retried the task). */
        CANCELLED,
        /** It was quarantined (then retried by an operator). */
        QUARANTINED,
        /** It succeeded (then an operator retried the task). */
        SUCCEEDED,
        /** No ending was recorded (e.g. the events were pruned). */
        UNKNOWN
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Maps the audit trail's record and the task's saved progress (its {@code progress} JSON, may be null). */
    public static PreviousAttempt of(AttemptRecord r, String progressJson) {
        JsonNode detail = parse(r.endDetailJson());
        Ending ending;
        String reason;
        OffsetDateTime ended = r.endedAt();
        if (r.endEvent() == null) {
            ending = r.takenOverAt() != null ? Ending.LEASE_EXPIRED : Ending.UNKNOWN;
            reason = r.takenOverAt() != null ? "lease expired; taken over by " + r.takenOverBy() : "no ending recorded";
            ended = r.takenOverAt();
        } else {
            switch (r.endEvent()) {
                case "retry_scheduled", "failed" -> {
                    ending = Ending.FAILED;
                    reason = text(detail, "error");
                }
                case "stuck" -> {
                    ending = Ending.STUCK;
                    reason = "no progress reported for " + seconds(detail, "silence_ms") + " s (bound "
                            + seconds(detail, "bound_ms") + " s" + (detail.hasNonNull("cadence_ms")
                            ? ", cadence " + seconds(detail, "cadence_ms") + " s" : "") + ")";
                }
                case "requeued", "quarantined" -> {
                    String cause = text(detail, "cause");
                    String by = text(detail, "by");
                    ending = "operator".equals(by) ? Ending.QUARANTINED
                            : "lease_expired".equals(cause) || "pgdispatch_reap_stale".equals(by) ? Ending.LEASE_EXPIRED
                            : cause != null ? Ending.NODE_DIED
                            : r.endEvent().equals("quarantined") ? Ending.QUARANTINED : Ending.NODE_DIED;
                    reason = text(detail, "reason");
                }
                case "recovered_on_startup" -> {
                    ending = Ending.NODE_DIED;
                    reason = "its node " + r.owner() + " restarted (left running by a previous incarnation)";
                }
                case "released" -> {
                    ending = Ending.RELEASED;
                    reason = "released by " + r.owner() + ": " + text(detail, "reason");
                }
                case "cancelled" -> {
                    ending = Ending.CANCELLED;
                    reason = text(detail, "reason");
                }
                case "succeeded" -> {
                    ending = Ending.SUCCEEDED;
                    reason = null;
                }
                default -> {
                    ending = Ending.UNKNOWN;
                    reason = r.endEvent();
                }
            }
        }
        JsonNode progress = parse(progressJson);
        Optional<JsonNode> checkpoint = Optional.ofNullable(progress.get("checkpoint")).filter(n -> !n.isNull());
        OffsetDateTime progressAt = progress.hasNonNull("at") ? OffsetDateTime.parse(progress.get("at").asText()) : null;
        Duration ran = ended == null ? null : Duration.between(r.startedAt(), ended);
        return new PreviousAttempt(r.owner(), r.attempt(), ending, reason, r.startedAt(), ended, ran, checkpoint,
                text(progress, "message"), progressAt);
    }

    private static JsonNode parse(String json) {
        if (json == null) return JSON.createObjectNode();
        try {
            return JSON.readTree(json);
        } catch (JsonProcessingException e) {
            return JSON.createObjectNode();
        }
    }

    private static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static String seconds(JsonNode n, String field) {
        return String.format(java.util.Locale.ROOT, "%.1f", n.path(field).asDouble() / 1000);
    }
}

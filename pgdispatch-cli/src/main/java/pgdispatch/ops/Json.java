package pgdispatch.ops;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * How the commands print {@code --json}: maps and lists built by the command (snake_case keys, times
 * as ISO-8601 UTC strings, stored JSON columns embedded as JSON, not as strings).
 */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private Json() {}

    static String write(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** A stored JSON column's text as a tree (so it prints as JSON); null stays null. */
    static Object embed(String jsonText) {
        if (jsonText == null) return null;
        try {
            return MAPPER.readTree(jsonText);
        } catch (JsonProcessingException e) {
            return jsonText; // not JSON after all: show it as text rather than fail the listing
        }
    }

    static String time(OffsetDateTime t) {
        if (OffsetDateTime.MAX.equals(t)) return "infinity"; // a legacy run_at from before V9 (TaskQueries)
        if (OffsetDateTime.MIN.equals(t)) return "-infinity";
        // ISO_OFFSET_DATE_TIME always prints the seconds (toString drops ":00")
        return t == null ? null : t.withOffsetSameInstant(ZoneOffset.UTC).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
    }
}

package pgdispatch.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import pgdispatch.store.Dependencies;
import pgdispatch.store.DependencyFailure;
import pgdispatch.store.NewTask;
import pgdispatch.store.TaskStore;
import pgdispatch.store.UniqueKey;

/**
 * Enqueues tasks. Every input is checked before it reaches the database, each problem named with its
 * field, value and rule; the database's CHECK constraints are the second line for producers that
 * insert with plain SQL (docs/SQL_CONTRACT.md).
 */
public final class TaskClient {
    // Strict: a payload is exactly one JSON object. Jackson's defaults would take "{...} junk" or two
    // concatenated objects as the first one and a repeated key as its last value: silent repairs that
    // hide a producer's bug and store something else than what was sent.
    // The parse only validates: the text sent is what is stored (jsonb keeps numbers as numeric, exact),
    // never Jackson's rewrite of it, which turned 1e400 into "Infinity" and rounded a 20-digit decimal
    // to a double. The nesting limit is ours, checked by the parser before it recurses any deeper.
    static final ObjectMapper JSON = new ObjectMapper(com.fasterxml.jackson.core.JsonFactory.builder()
            .streamReadConstraints(com.fasterxml.jackson.core.StreamReadConstraints.builder()
                    .maxNestingDepth(TaskClient.MAX_PAYLOAD_DEPTH).build())
            .build())
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_INTEGER_FOR_INTS)
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    /** How deep objects and arrays may nest in a payload (PostgreSQL's own parser recurses per level too). */
    public static final int MAX_PAYLOAD_DEPTH = 200;
    private static final Pattern QUEUE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}");
    private static final Pattern KIND = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}");
    /** How far ahead a task may be scheduled, and how far back a run-at may lie (likely a bug then). */
    public static final Duration MAX_AHEAD = Duration.ofDays(5 * 366);
    public static final Duration MAX_BEHIND = Duration.ofDays(366);

    /**
     * Typed payloads both ways: writes any Jackson-serialisable value, reads into a handler's type
     * ignoring fields it does not know (a newer producer may add some); java.time and other Jackson
     * modules on the classpath are found.
     */
    static final ObjectMapper TYPED = com.fasterxml.jackson.databind.json.JsonMapper.builder().findAndAddModules()
            .disable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).build();
    /** {@code TASK_MAX_PAYLOAD_BYTES}' default. */
    public static final int DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20;

    private final TaskStore store;
    private final int maxPayloadBytes;

    public TaskClient(TaskStore store, int maxPayloadBytes) {
        this.store = store;
        this.maxPayloadBytes = maxPayloadBytes;
    }

    /**
     * A client over an application's {@code dataSource} (any pool; its search_path does not matter),
     * for pgdispatch installed in the {@code public} schema. {@link #enqueue(Connection, Enqueue)} joins
     * the caller's transaction.
     */
    public static TaskClient of(DataSource dataSource) {
        return of(dataSource, pgdispatch.config.DatabaseUrl.DEFAULT_SCHEMA);
    }

    /** The same for pgdispatch installed in {@code schema} ({@code PGDISPATCH_SCHEMA}). */
    public static TaskClient of(DataSource dataSource, String schema) {
        return new TaskClient(new TaskStore(dataSource, schema), DEFAULT_MAX_PAYLOAD_BYTES);
    }

    /** Enqueues a task of {@code kind} whose payload is {@code payload} serialised by Jackson; returns its id. */
    public long enqueue(String kind, Object payload) {
        return enqueue(Enqueue.of(kind, payload));
    }

    /** The same inside the caller's transaction on {@code connection}. */
    public long enqueue(Connection connection, String kind, Object payload) {
        return enqueue(connection, Enqueue.of(kind, payload));
    }

    /**
     * A task to enqueue: {@code kind} and a JSON-object {@code payload}, the rest optional with defaults;
     * {@code unique} (null: not unique) makes it unique by a key of the fields it names;
     * {@code dependencies} (null: none) makes it wait for other tasks ({@link #dependsOn}).
     */
    public record Enqueue(String kind, String payloadJson, String queue, int priority, OffsetDateTime runAt,
                          int maxAttempts, String idempotencyKey, UniqueKey unique, Dependencies dependencies) {
        public Enqueue(String kind, String payloadJson, String queue, int priority, OffsetDateTime runAt, int maxAttempts,
                       String idempotencyKey, UniqueKey unique) {
            this(kind, payloadJson, queue, priority, runAt, maxAttempts, idempotencyKey, unique, null);
        }

        public Enqueue(String kind, String payloadJson, String queue, int priority, OffsetDateTime runAt, int maxAttempts,
                       String idempotencyKey) {
            this(kind, payloadJson, queue, priority, runAt, maxAttempts, idempotencyKey, null, null);
        }

        public static Enqueue of(String kind, String payloadJson) {
            return new Enqueue(kind, payloadJson, "default", 0, null, 5, null, null, null);
        }

        /**
         * A task whose payload is {@code payload} (a record, a bean, a {@code Map}: anything Jackson
         * serialises to a JSON object) serialised now; a {@code String} is taken as JSON text by
         * {@link #of(String, String)} instead.
         */
        public static Enqueue of(String kind, Object payload) {
            if (payload instanceof String json) return of(kind, json);
            try {
                return of(kind, payload == null ? null : TYPED.writeValueAsString(payload));
            } catch (JsonProcessingException ex) {
                throw new InvalidTaskException("payload", "payload of type " + payload.getClass().getName()
                        + " cannot be serialised to JSON: " + ex.getOriginalMessage());
            }
        }

        public Enqueue queue(String q) {
            return new Enqueue(kind, payloadJson, q, priority, runAt, maxAttempts, idempotencyKey, unique, dependencies);
        }

        public Enqueue priority(int p) {
            return new Enqueue(kind, payloadJson, queue, p, runAt, maxAttempts, idempotencyKey, unique, dependencies);
        }

        public Enqueue runAt(OffsetDateTime t) {
            return new Enqueue(kind, payloadJson, queue, priority, t, maxAttempts, idempotencyKey, unique, dependencies);
        }

        public Enqueue maxAttempts(int n) {
            return new Enqueue(kind, payloadJson, queue, priority, runAt, n, idempotencyKey, unique, dependencies);
        }

        public Enqueue idempotencyKey(String k) {
            return new Enqueue(kind, payloadJson, queue, priority, runAt, maxAttempts, k, unique, dependencies);
        }

        /** At most one task with this key among those in its key's statuses (UniqueKey). */
        public Enqueue unique(UniqueKey u) {
            return new Enqueue(kind, payloadJson, queue, priority, runAt, maxAttempts, idempotencyKey, u, dependencies);
        }

        /**
         * Runs after the tasks {@code ids} (which must exist already): waiting until all of them have
         * succeeded; cancelled when one ends failed, cancelled, quarantined or compensated, unless
         * {@link #runAnyway()}. No ids: no dependencies.
         */
        public Enqueue dependsOn(long... ids) {
            List<Long> list = java.util.Arrays.stream(ids).boxed().toList();
            DependencyFailure f = dependencies == null ? DependencyFailure.CANCEL : dependencies.onFailure();
            return new Enqueue(kind, payloadJson, queue, priority, runAt, maxAttempts, idempotencyKey, unique,
                    new Dependencies(list, f));
        }

        /** What this task does when a dependency ends other than succeeded (default {@link DependencyFailure#CANCEL}). */
        public Enqueue onDependencyFailure(DependencyFailure f) {
            List<Long> ids = dependencies == null ? List.of() : dependencies.ids();
            return new Enqueue(kind, payloadJson, queue, priority, runAt, maxAttempts, idempotencyKey, unique,
                    new Dependencies(ids, f));
        }

        /** {@code onDependencyFailure(RUN)}: runs once every dependency has ended, however it ended. */
        public Enqueue runAnyway() {
            return onDependencyFailure(DependencyFailure.RUN);
        }
    }

    /** Validates and inserts; returns the task id (the existing one for a used idempotency or unique key). */
    public long enqueue(Enqueue e) {
        return store.enqueue(validate(e));
    }

    /**
     * Validates and inserts a unique task ({@link Enqueue#unique}), and says what happened: a new task, or
     * the existing one that holds the idempotency key or the unique key ({@link TaskStore.Enqueued#conflict()}
     * names which). Without a unique key, use {@link #enqueue(Enqueue)}.
     */
    public TaskStore.Enqueued submit(Enqueue e) {
        return store.enqueueReporting(validate(e));
    }

    /** The same inside the caller's transaction. */
    public TaskStore.Enqueued submit(Connection connection, Enqueue e) {
        return store.enqueueReporting(connection, validate(e));
    }

    /** The same inside the caller's transaction: the task exists only if that transaction commits. */
    public long enqueue(Connection connection, Enqueue e) {
        return store.enqueue(connection, validate(e));
    }

    /** Checks every field; the returned task is what will be stored (payload normalised). */
    public NewTask validate(Enqueue e) {
        return validate(e, maxPayloadBytes);
    }

    /** The same checks without a client (before any connection is opened). */
    public static NewTask validate(Enqueue e, int maxPayloadBytes) {
        if (e.kind() == null || !KIND.matcher(e.kind()).matches()) {
            throw new InvalidTaskException("kind", "kind=" + quote(e.kind())
                    + " must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        }
        if (e.queue() == null || !QUEUE.matcher(e.queue()).matches()) {
            throw new InvalidTaskException("queue", "queue=" + quote(e.queue())
                    + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        }
        String raw = e.payloadJson() == null ? "{}" : e.payloadJson();
        int bytes = raw.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > maxPayloadBytes) {
            throw new InvalidTaskException("payload", "payload of " + bytes + " bytes exceeds TASK_MAX_PAYLOAD_BYTES="
                    + maxPayloadBytes);
        }
        JsonNode node;
        try {
            node = JSON.readTree(raw);
        } catch (com.fasterxml.jackson.core.exc.StreamConstraintsException ex) {
            if (ex.getOriginalMessage().contains("nesting depth")) {
                throw new InvalidTaskException("payload", "payload nests objects and arrays deeper than "
                        + MAX_PAYLOAD_DEPTH + " levels (the nesting limit)");
            }
            throw new InvalidTaskException("payload", "payload exceeds a parser limit: " + ex.getOriginalMessage());
        } catch (JsonProcessingException ex) {
            String where = ex.getLocation() == null ? ""
                    : " (line " + ex.getLocation().getLineNr() + ", column " + ex.getLocation().getColumnNr() + ")";
            if (ex.getOriginalMessage().startsWith("Trailing token")) {
                throw new InvalidTaskException("payload", "payload has more after its JSON value" + where
                        + "; send exactly one JSON object");
            }
            throw new InvalidTaskException("payload", "payload is not valid JSON: " + ex.getOriginalMessage() + where);
        }
        if (node == null || !node.isObject()) {
            throw new InvalidTaskException("payload", "payload must be a JSON object ({...}), got "
                    + (node == null ? "nothing" : node.getNodeType().name().toLowerCase()));
        }
        if (e.priority() < -1000 || e.priority() > 1000) {
            throw new InvalidTaskException("priority", "priority=" + e.priority() + " must be from -1000 to 1000 (lower runs first)");
        }
        if (e.maxAttempts() < 1 || e.maxAttempts() > 1000) {
            throw new InvalidTaskException("max_attempts", "max_attempts=" + e.maxAttempts() + " must be from 1 to 1000");
        }
        if (e.runAt() != null) {
            OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
            // the JVM clock only bounds obvious mistakes here; when a task is due is decided by now() in SQL
            if (e.runAt().isAfter(now.plus(MAX_AHEAD))) {
                throw new InvalidTaskException("run_at", "run_at=" + e.runAt() + " is more than " + MAX_AHEAD.toDays()
                        + " days ahead");
            }
            if (e.runAt().isBefore(now.minus(MAX_BEHIND))) {
                throw new InvalidTaskException("run_at", "run_at=" + e.runAt() + " is more than " + MAX_BEHIND.toDays()
                        + " days in the past; omit it to run now");
            }
        }
        if (e.idempotencyKey() != null && (e.idempotencyKey().isBlank() || e.idempotencyKey().length() > 200)) {
            throw new InvalidTaskException("idempotency_key", "idempotency_key must be 1-200 characters, got "
                    + e.idempotencyKey().length());
        }
        checkText(node, "payload");
        return new NewTask(e.queue(), e.kind(), raw, e.priority(), e.runAt(), e.maxAttempts(), e.idempotencyKey(), e.unique(),
                dependencies(e.dependencies()));
    }

    /** The dependencies to store: null for none; each id positive, at most {@link Dependencies#MAX}. */
    private static Dependencies dependencies(Dependencies d) {
        if (d == null) return null;
        if (d.ids().isEmpty()) {
            if (d.onFailure() == DependencyFailure.RUN) {
                throw new InvalidTaskException("depends_on", "on_dependency_failure=run needs depends_on (no task to wait for)");
            }
            return null;
        }
        if (d.ids().size() > Dependencies.MAX) {
            throw new InvalidTaskException("depends_on", "depends_on lists " + d.ids().size() + " tasks; at most "
                    + Dependencies.MAX);
        }
        for (long id : d.ids()) {
            if (id < 1) throw new InvalidTaskException("depends_on", "depends_on=" + id + " is not a task id (ids are positive)");
        }
        return d;
    }

    /**
     * Refuses text jsonb cannot store as sent: U+0000, and a lone UTF-16 surrogate (PostgreSQL refuses the
     * escape; a raw one would reach the database as "?"). Walks every key and string value; the depth is
     * bounded by {@link #MAX_PAYLOAD_DEPTH}.
     */
    private static void checkText(JsonNode node, String path) {
        if (node.isTextual()) {
            checkString(node.textValue(), path);
        } else if (node.isObject()) {
            for (var field : node.properties()) {
                checkString(field.getKey(), path + " key");
                checkText(field.getValue(), path + "." + field.getKey());
            }
        } else if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) checkText(node.get(i), path + "[" + i + "]");
        }
    }

    private static void checkString(String s, String path) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == 0) {
                throw new InvalidTaskException("payload", "payload contains \\u0000, which PostgreSQL jsonb cannot store");
            }
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new InvalidTaskException("payload", path + " contains a lone UTF-16 surrogate \\u"
                        + Integer.toHexString(c).toUpperCase(java.util.Locale.ROOT)
                        + ", which is not a Unicode character; send a surrogate pair or another character");
            }
        }
    }

    private static String quote(String s) {
        if (s == null) return "(missing)";
        String shown = s.length() > 60 ? s.substring(0, 60) + "…" : s;
        return "'" + shown.replace("\n", "\\n") + "'";
    }
}

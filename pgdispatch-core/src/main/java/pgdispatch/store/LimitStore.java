package pgdispatch.store;

import java.time.OffsetDateTime;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * The {@code concurrency_limits} rows: how many tasks of a kind or of a queue may run at once across
 * the cluster. Set, cleared and listed here (CLI, dashboard); enforced by the claim itself
 * ({@link TaskStore#claimDue}), which reads the rows in its own statement.
 */
public final class LimitStore {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}");
    public static final int MAX = 100_000;

    private final DSLContext dsl;

    public LimitStore(DataSource ds) {
        this.dsl = DSL.using(ds, SQLDialect.POSTGRES);
    }

    /** What a limit applies to. */
    public enum Scope {
        KIND, QUEUE;

        public String sql() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** A limit as stored, with the tasks of its kind or queue running now (by the database). */
    public record Limit(Scope scope, String name, int maxRunning, long running, OffsetDateTime changedAt, String changedBy) {
        /** The key the claim locks and passes for this limit ({@code kind:report}, {@code queue:mail}). */
        public String key() {
            return LimitStore.key(scope, name);
        }
    }

    /** The claim's name for a limit: the advisory lock is taken on it, and {@code :locked} lists it. */
    public static String key(Scope scope, String name) {
        return scope.sql() + ":" + name;
    }

    /** Checks the limit's target and size; messages name the value and the rule. */
    public static void check(Scope scope, String name, int maxRunning) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException(scope.sql() + "=" + (name == null ? "(missing)" : "'" + name + "'")
                    + " must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
        }
        if (maxRunning < 0 || maxRunning > MAX) {
            throw new IllegalArgumentException("MAX=" + maxRunning + " must be from 0 to " + MAX
                    + " (0: none starts; `limits clear` removes the limit)");
        }
    }

    /**
     * Sets (inserts or changes) the limit on {@code name}; from every node's next claim on no more than
     * {@code maxRunning} of its tasks run at once (running tasks above a lowered limit finish).
     */
    public Limit set(Scope scope, String name, int maxRunning, String by) {
        check(scope, name, maxRunning);
        dsl.execute("""
                INSERT INTO concurrency_limits (scope, name, max_running, changed_at, changed_by)
                VALUES ({0}, {1}, {2}, now(), {3})
                ON CONFLICT (scope, name) DO UPDATE
                   SET max_running = excluded.max_running, changed_at = now(), changed_by = excluded.changed_by
                """, DSL.val(scope.sql()), DSL.val(name), DSL.val(maxRunning), DSL.val(by));
        return find(scope, name).orElseThrow();
    }

    /** Removes the limit; false when there was none. */
    public boolean clear(Scope scope, String name) {
        return dsl.execute("DELETE FROM concurrency_limits WHERE scope = {0} AND name = {1}",
                DSL.val(scope.sql()), DSL.val(name)) == 1;
    }

    public Optional<Limit> find(Scope scope, String name) {
        return list().stream().filter(l -> l.scope() == scope && l.name().equals(name)).findFirst();
    }

    /** Every limit with its running count, by scope and name. */
    public List<Limit> list() {
        return dsl.resultQuery("""
                SELECT l.*, (SELECT count(*) FROM tasks r WHERE r.status = 'running'
                                AND CASE l.scope WHEN 'kind' THEN r.kind = l.name ELSE r.queue = l.name END) AS running
                  FROM concurrency_limits l ORDER BY l.scope, l.name
                """).fetch(LimitStore::limit);
    }

    /** The keys of the limits that cover any of {@code kinds} or {@code queues}: what a node's claim must lock. */
    public List<String> keysFor(Collection<String> kinds, Collection<String> queues) {
        return dsl.resultQuery("""
                SELECT scope || ':' || name FROM concurrency_limits
                 WHERE (scope = 'kind' AND name = ANY({0})) OR (scope = 'queue' AND name = ANY({1}))
                 ORDER BY 1
                """, DSL.val(kinds.toArray(String[]::new)), DSL.val(queues.toArray(String[]::new)))
                .fetch(r -> r.get(0, String.class));
    }

    private static Limit limit(Record r) {
        return new Limit(Scope.valueOf(r.get("scope", String.class).toUpperCase(Locale.ROOT)), r.get("name", String.class),
                r.get("max_running", Integer.class), r.get("running", Long.class), r.get("changed_at", OffsetDateTime.class),
                r.get("changed_by", String.class));
    }
}

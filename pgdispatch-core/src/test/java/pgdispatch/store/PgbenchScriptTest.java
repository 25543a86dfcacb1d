package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * bench/pgbench/claim-complete.sql (what scripts/pgbench-bound runs to measure PostgreSQL's own bound)
 * carries TaskStore's CLAIM and COMPLETE statements with the node's values inlined. A copy drifts: it
 * did, twice (a completion check and the claim's legacy-row guard were missing from it, so the bound
 * measured less work than the runtime does). This test derives the two statements from TaskStore and
 * compares them with the file, whitespace-insensitively; on a mismatch it prints what the file must hold.
 */
class PgbenchScriptTest {
    static final Path SCRIPT = Path.of("bench/pgbench/claim-complete.sql");

    /** TaskStore's claim for one queue and one kind, :take_over false, as pgbench client :client_id. */
    static String claim() {
        return TaskStore.CLAIM_TEXT
                .replace(":kinds::text[]", "'{noop}'::text[]")
                .replace(":lease_ms::bigint[]", "'{600000}'::bigint[]")
                .replace(":queues::text[]", "'{default}'::text[]")
                .replace(":compensating_kinds::text[]", "'{}'::text[]")
                .replace(":take_over", "false")
                .replace(":max_requeue", "3")
                .replace(":max_payload", "1048576")
                .replace(":owner", "('pgbench-' || :client_id)")
                .replace("SELECT * FROM claimed", "SELECT coalesce(array_agg(id), '{}') AS ids,"
                        + " coalesce(array_agg(lease_token), '{}') AS tokens FROM claimed \\gset");
    }

    /** TaskStore's completion of the claimed ids (carried by \gset), with no results. */
    static String complete() {
        return TaskStore.COMPLETE_TEXT
                .replace(":ids::bigint[]", "(:ids)::bigint[]")
                .replace(":tokens::bigint[]", "(:tokens)::bigint[]")
                .replace(":results::text[]", "array_fill(NULL::text, ARRAY[cardinality((:ids)::bigint[])])")
                .replace(":owner", "('pgbench-' || :client_id)")
                .stripTrailing() + ";";
    }

    private static String squeeze(String sql) {
        return sql.replaceAll("(?m)--.*$", "").replaceAll("\\s+", " ").trim();
    }

    @org.junit.jupiter.api.Test
    void theScriptRunsTheRuntimesClaimAndCompletionStatements() throws IOException {
        String script = Files.readString(SCRIPT);
        String body = squeeze(script);
        String expected = claim() + "\n" + complete();
        assertThat(body).as("%s must end with TaskStore's statements; expected:%n%s", SCRIPT, expected)
                .endsWith(squeeze(expected));
    }
}

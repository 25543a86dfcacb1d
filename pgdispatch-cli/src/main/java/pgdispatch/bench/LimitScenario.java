package pgdispatch.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.Database;
import pgdispatch.store.LimitStore;
import pgdispatch.store.TaskStore;

/**
 * {@code limit}: what a cluster-wide concurrency limit costs the claim. The time of one claim of C
 * tasks (the node's worker slots) from T pending rows ({@code --tasks}, default 100,000) without a limit (one statement), with a
 * limit that does not bind (the advisory lock, the count of the kind's running rows, the claim: three
 * statements in one transaction), and the same with 1,000 (at most a tenth of T) of the kind's tasks
 * already running (the count reads them). Between two claims the claimed rows are put back to pending, outside the timing.
 */
final class LimitScenario implements Scenario {
    private static final int CLAIMS = 25;
    private static final int RUNNING = 1_000;

    @Override
    public String name() {
        return "limit";
    }

    @Override
    public String headline() {
        return "claim_ms_limited";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return "claim of " + f.get("claim_limit") + " from " + f.get("pending_rows") + " pending: "
                + Bench.num(f.get("claim_ms_plain")) + " ms without a limit, " + Bench.num(f.get("claim_ms_limited"))
                + " ms with one (" + Bench.num(f.get("limited_vs_plain")) + "x), " + Bench.num(f.get("claim_ms_limited_running"))
                + " ms with one and " + f.get("running_rows") + " of the kind running";
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        int pending = o.tasks();
        int running = Math.min(RUNNING, pending / 10);
        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, " + pending + ")");
        db.exec("VACUUM ANALYZE tasks");
        ClaimRequest plain = new ClaimRequest("bench-limit", List.of("default"), Map.of("noop", Duration.ofMinutes(10)),
                o.concurrency(), 3, false);
        ClaimRequest limited = plain.withLockedLimits(List.of(LimitStore.key(LimitStore.Scope.KIND, "noop")));
        Map<String, Object> f = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        f.put("claim_limit", o.concurrency());
        f.put("pending_rows", pending);
        try (Database pool = Database.open(db.url(), 1, "pgdispatch-bench-limit")) {
            TaskStore store = new TaskStore(pool);
            f.put("claim_ms_plain", claims(db, store, plain, "without a limit", notes));
            LimitStore limits = new LimitStore(pool.dataSource());
            limits.set(LimitStore.Scope.KIND, "noop", LimitStore.MAX, "bench");
            f.put("claim_ms_limited", claims(db, store, limited, "with a limit", notes));
            db.exec("UPDATE tasks SET status = 'running', owner_id = 'bench-other', lease_token = 1, attempts = 1,"
                    + " lease_expires_at = now() + interval '1 hour' WHERE id IN (SELECT id FROM tasks ORDER BY id DESC LIMIT " + running + ")");
            db.exec("VACUUM ANALYZE tasks");
            f.put("running_rows", running);
            f.put("claim_ms_limited_running", claims(db, store, limited, "with a limit and " + running + " running", notes));
            limits.clear(LimitStore.Scope.KIND, "noop");
        }
        f.put("limited_vs_plain", (double) f.get("claim_ms_limited") / (double) f.get("claim_ms_plain"));
        return new Run(f, notes);
    }

    /** The median time of {@link #CLAIMS} claims (after a warm-up), and the plan of one more. */
    private static double claims(ScratchDatabase db, TaskStore store, ClaimRequest req, String label, List<String> notes) {
        double[] ms = new double[CLAIMS];
        store.claimDue(req);
        putBack(db);
        for (int i = 0; i < CLAIMS; i++) {
            long t0 = System.nanoTime();
            int n = store.claimDue(req).size();
            ms[i] = (System.nanoTime() - t0) / 1e6;
            if (n != req.limit()) throw new IllegalStateException("claimed " + n + " of " + req.limit());
            putBack(db);
        }
        notes.add("EXPLAIN ANALYZE of the claim, " + label + ":\n" + String.join("\n", store.explainClaim(req)));
        Arrays.sort(ms);
        return ms[CLAIMS / 2];
    }

    private static void putBack(ScratchDatabase db) {
        db.exec("UPDATE tasks SET status = 'pending', owner_id = NULL, lease_expires_at = NULL WHERE owner_id = 'bench-limit'"
                + " AND status = 'running'");
    }
}

package pgdispatch.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.Database;
import pgdispatch.store.TaskStore;

/**
 * {@code backlog}: the time of one claim ({@link TaskStore#claimDue}, C tasks, as the claim loop sends
 * it between its once-per-poll looks for expired leases) with 1,000 pending rows,
 * with a large backlog (default 1,000,000), and with a tenth of that becoming due in the same second
 * (every row with the same {@code run_at}: the case where a lock-then-limit plan sorts or locks them
 * all). Each figure is the median of several claims; the plan of each case ({@code EXPLAIN ANALYZE},
 * rolled back) goes to the summary; {@code seq_scan_big} and {@code seq_scan_same_second} say whether
 * those plans read the whole table.
 */
final class BacklogScenario implements Scenario {
    private static final int CLAIMS = 15;
    private static final int SMALL = 1000;

    @Override
    public String name() {
        return "backlog";
    }

    @Override
    public String headline() {
        return "claim_ms_big";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return "claim of " + f.get("claim_limit") + ": " + Bench.num(f.get("claim_ms_small")) + " ms with " + f.get("small_rows")
                + " pending, " + Bench.num(f.get("claim_ms_big")) + " ms with " + f.get("big_rows") + " ("
                + Bench.num(f.get("big_vs_small")) + "x), " + Bench.num(f.get("claim_ms_same_second")) + " ms with "
                + f.get("same_second_rows") + " due in the same second; full-table scans with the big backlog: "
                + f.get("seq_scan_big") + ", with the same-second rows: " + f.get("seq_scan_same_second");
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        int big = Math.max(o.backlog(), SMALL * 2);
        int burst = Math.max(big / 10, SMALL);
        ClaimRequest req = new ClaimRequest("bench-backlog", List.of("default"), Map.of("noop", Duration.ofMinutes(10)),
                o.concurrency(), 3, false);
        Map<String, Object> f = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        f.put("claim_limit", o.concurrency());

        insert(db, SMALL, "now()");
        f.put("small_rows", SMALL);
        f.put("claim_ms_small", claims(db, req, "small backlog (" + SMALL + " pending)", notes));

        insert(db, big - SMALL, "now()");
        f.put("big_rows", big);
        f.put("claim_ms_big", claims(db, req, "big backlog (" + big + " pending)", notes));
        f.put("big_vs_small", (double) f.get("claim_ms_big") / (double) f.get("claim_ms_small"));

        db.exec("TRUNCATE tasks, task_event_log");
        double dueAt = db.number("SELECT extract(epoch FROM now() + interval '2 seconds')");
        insert(db, burst, "to_timestamp(" + dueAt + ")");
        long waitMs = (long) ((dueAt - db.number("SELECT extract(epoch FROM clock_timestamp())")) * 1000) + 50;
        if (waitMs > 0) Thread.sleep(waitMs); // until the rows' common run_at has passed, by the database's clock
        f.put("same_second_rows", burst);
        f.put("claim_ms_same_second", claims(db, req, burst + " rows due in the same second", notes));

        // a table of a few pages is read whole by choice; a backlog must never be
        f.put("seq_scan_big", notes.get(1).contains("Seq Scan on tasks"));
        f.put("seq_scan_same_second", notes.get(2).contains("Seq Scan on tasks"));
        return new Run(f, notes);
    }

    /** Bulk set-up: {@code n} pending noop rows due at {@code runAt} (an SQL expression), then ANALYZE. */
    private static void insert(ScratchDatabase db, int n, String runAt) {
        db.exec("INSERT INTO tasks (kind, run_at) SELECT 'noop', " + runAt + " FROM generate_series(1, " + n + ")");
        db.exec("VACUUM ANALYZE tasks");
    }

    /** The median time of {@link #CLAIMS} claims (after a warm-up), and the plan of one more. */
    private static double claims(ScratchDatabase db, ClaimRequest req, String label, List<String> notes) {
        double[] ms = new double[CLAIMS];
        try (Database pool = Database.open(db.url(), 1, "pgdispatch-bench-backlog")) {
            TaskStore store = new TaskStore(pool);
            store.claimDue(req);
            for (int i = 0; i < CLAIMS; i++) {
                long t0 = System.nanoTime();
                int n = store.claimDue(req).size();
                ms[i] = (System.nanoTime() - t0) / 1e6;
                if (n != req.limit()) throw new IllegalStateException("claimed " + n + " of " + req.limit());
            }
            notes.add("EXPLAIN ANALYZE of the claim, " + label + ":\n" + String.join("\n", store.explainClaim(req)));
        }
        Arrays.sort(ms);
        return ms[CLAIMS / 2];
    }
}

package pgdispatch.chaos;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import pgdispatch.store.StoreException;
import pgdispatch.store.TaskStore;

/**
 * The chaos run's mixed workload, enqueued in waves with the store's bulk insert: mostly {@code noop};
 * 5% {@code fail}; a share of {@code sleep} sized by the caller to the cluster's worker slots;
 * {@code sleep} of varied length, some longer than the renewal interval and some longer than the lease
 * (only renewals keep those alive); {@code fail} with {"times":1..2} and max_attempts 1, 2 or 5, so
 * some succeed after retries and some fail for good; and a share of handler faults
 * ({@link FaultyHandlers}, max_attempts 2). Every payload carries its wave and group, so an
 * insert whose outcome is unknown (connection cut at commit) is settled by looking, never by guessing.
 */
final class Workload {
    /** Sleep lengths in ms: short, longer than TASK_RENEW_S=1, longer than TASK_LEASE_S=6. */
    private static final long[] SLEEPS = {20, 150, 400, 1_500, 2_500, 4_000, 7_000, 9_000};

    private record Group(int no, String kind, int maxAttempts, int priority, List<String> payloads,
                         List<Invariants.Expected> expected) {}

    /** Mean of {@link #SLEEPS} in seconds: what one sleep task costs a worker slot. */
    static final double MEAN_SLEEP_S = java.util.Arrays.stream(SLEEPS).average().orElseThrow() / 1000.0;

    private final Random random;
    private final double sleepShare;
    private final double faultShare;
    private final TaskStore store;
    private final DataSource ds;
    private final AtomicLong committed = new AtomicLong();
    private final Map<String, Long> byKind = new LinkedHashMap<>();
    private final Map<Long, Invariants.Expected> expected = new java.util.concurrent.ConcurrentHashMap<>();
    private int wave;

    /**
     * {@code sleepShare}: the fraction of tasks that sleep; {@code faultShare}: the fraction that run a
     * faulty handler (the rest: 5% fail, the others noop).
     */
    Workload(long seed, double sleepShare, double faultShare, TaskStore store, DataSource ds) {
        this.random = new Random(seed);
        this.sleepShare = sleepShare;
        this.faultShare = faultShare;
        this.store = store;
        this.ds = ds;
    }

    /** Tasks whose insert committed. */
    long committed() {
        return committed.get();
    }

    /** Every committed task by id, with what its handler must produce. */
    Map<Long, Invariants.Expected> expected() {
        return Map.copyOf(expected);
    }

    synchronized Map<String, Long> byKind() {
        return Map.copyOf(byKind);
    }

    /** Tasks enqueued (committed) for the faulty handlers. */
    synchronized long handlerFaults() {
        long n = 0;
        for (String k : FaultyHandlers.KINDS) n += byKind.getOrDefault(k, 0L);
        return n;
    }

    /** Enqueues {@code n} tasks as one wave (a few statements, one per kind and setting). */
    synchronized void enqueue(int n, long deadlineMs) throws InterruptedException {
        int w = ++wave;
        Map<String, Group> groups = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            double r = random.nextDouble();
            String kind;
            int maxAttempts = 5;
            String body;
            long ms = 0;
            int times = 0;
            if (random.nextDouble() < faultShare) {
                kind = FaultyHandlers.KINDS[random.nextInt(FaultyHandlers.KINDS.length)];
                maxAttempts = 2;
                body = ",\"v\":" + random.nextInt(12);
            } else if (r >= 0.05 + sleepShare) {
                kind = "noop";
                body = "";
            } else if (r >= 0.05) {
                kind = "sleep";
                ms = SLEEPS[random.nextInt(SLEEPS.length)];
                body = ",\"ms\":" + ms;
            } else {
                kind = "fail";
                times = 1 + random.nextInt(2);
                maxAttempts = new int[] {1, 2, 5, 5}[random.nextInt(4)];
                body = ",\"times\":" + times;
            }
            int priority = random.nextInt(3) - 1;
            String key = kind + "/" + maxAttempts + "/" + priority;
            Group g = groups.get(key);
            if (g == null) {
                g = new Group(groups.size() + 1, kind, maxAttempts, priority, new ArrayList<>(), new ArrayList<>());
                groups.put(key, g);
            }
            g.payloads().add("{\"w\":" + w + ",\"g\":" + g.no() + ",\"i\":" + i + body + "}");
            g.expected().add(new Invariants.Expected(w + "/" + g.no() + "/" + i, kind, ms, times, maxAttempts));
        }
        for (Group g : groups.values()) insert(w, g, deadlineMs);
    }

    private void insert(int w, Group g, long deadlineMs) throws InterruptedException {
        long backoff = 100;
        while (true) {
            try {
                List<Long> ids = store.enqueueMany("default", g.kind(), g.payloads(), g.priority(), g.maxAttempts());
                for (int i = 0; i < ids.size(); i++) expected.put(ids.get(i), g.expected().get(i));
                count(g, ids.size());
                return;
            } catch (StoreException e) {
                if (!e.connectionLost()) throw e;
                // outcome unknown: the marker says whether the insert committed
            }
            while (true) {
                if (System.currentTimeMillis() > deadlineMs) {
                    throw new IllegalStateException("workload: could not settle wave " + w + " group " + g.no() + " before the deadline");
                }
                Thread.sleep(backoff); // waiting for the database to come back, not for another thread
                backoff = Math.min(backoff * 2, 2000);
                try {
                    Map<Long, Invariants.Expected> found = findGroup(w, g);
                    if (found.size() == g.payloads().size()) {
                        expected.putAll(found);
                        count(g, found.size());
                        return;
                    }
                    if (!found.isEmpty()) {
                        throw new IllegalStateException("workload: wave " + w + " group " + g.no() + " half inserted: " + found.size());
                    }
                    break; // not committed: insert again
                } catch (SQLException e) {
                    // still unreachable
                }
            }
        }
    }

    /** The group's rows by id, matched to their expectations by the payload's index. */
    private Map<Long, Invariants.Expected> findGroup(int w, Group g) throws SQLException {
        Map<String, Invariants.Expected> byKey = new HashMap<>();
        for (Invariants.Expected e : g.expected()) byKey.put(e.key(), e);
        Map<Long, Invariants.Expected> found = new HashMap<>();
        try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement(
                "SELECT id, payload->>'i' FROM tasks WHERE payload->>'w' = ? AND payload->>'g' = ?")) {
            ps.setString(1, Integer.toString(w));
            ps.setString(2, Integer.toString(g.no()));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) found.put(rs.getLong(1), byKey.get(w + "/" + g.no() + "/" + rs.getString(2)));
            }
        }
        return found;
    }

    private void count(Group g, int n) {
        committed.addAndGet(n);
        byKind.merge(g.kind(), (long) n, Long::sum);
    }
}

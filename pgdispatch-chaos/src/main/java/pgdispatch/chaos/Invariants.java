package pgdispatch.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The end-of-run check over {@code tasks} and {@code task_events}: replays each task's event history
 * (in event id order, which for one task follows the row's lock order: every transition inserts its
 * event in the statement that updated the row) and compares it with the row, plus the budget rules.
 * Violations fall into the four counters of the summary line:
 * <ul>
 *   <li><b>lost</b>: an enqueued task missing from the table, or a row its own history does not explain
 *       (status, owner, token, attempts or requeue count differ from the replay; a claim whose token is
 *       not the previous token + 1: a transition without its event).</li>
 *   <li><b>double_accepted</b>: more than one accepted completion of a task ({@code succeeded} events
 *       must be 1 for a succeeded task and 0 for any other; at most one final outcome), or an accepted
 *       write ({@code succeeded}, {@code failed}, {@code retry_scheduled}, {@code released}) whose
 *       owner and lease token are not those of the latest claim while the task was running under it:
 *       a write from a superseded owner.</li>
 *   <li><b>over_budget</b>: {@code requeue_count > TASK_MAX_REQUEUE}; {@code attempts > max_attempts +
 *       requeue_count}; a quarantine not explained by an exhausted requeue budget (count below the
 *       budget, or last_error not saying so).</li>
 *   <li><b>stuck</b>: a task still pending or running after the drain deadline.</li>
 * </ul>
 * SQL here is read-only and outside the store on purpose: this is an audit tool, and it must not
 * share the code it audits.
 */
final class Invariants {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int EXAMPLES = 5;

    /** The verdict: the four counters, per-rule counts and a few example task ids per rule. */
    record Verdict(long tasks, long lost, long doubleAccepted, long overBudget, long stuck,
                   Map<String, Long> byRule, Map<String, List<String>> examples, Map<String, Long> stats) {
        boolean ok() {
            return lost == 0 && doubleAccepted == 0 && overBudget == 0 && stuck == 0;
        }
    }

    private record Row(long id, String status, int attempts, int maxAttempts, int requeueCount, long token,
                       String owner, String lastError) {}

    private record Event(long id, String event, String owner, Long token, JsonNode detail) {}

    private final int maxRequeue;
    private final Map<String, Long> byRule = new TreeMap<>();
    private final Map<String, List<String>> examples = new TreeMap<>();
    private final Map<String, Long> stats = new TreeMap<>();
    private long lost;
    private long doubleAccepted;
    private long overBudget;
    private long stuck;

    Invariants(int maxRequeue) {
        this.maxRequeue = maxRequeue;
    }

    /** Checks the whole database; {@code enqueued} is how many tasks the run committed. */
    Verdict check(Connection c, long enqueued) throws SQLException {
        Map<Long, Row> rows = new LinkedHashMap<>();
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("""
                SELECT id, status, attempts, max_attempts, requeue_count, lease_token, owner_id, last_error
                  FROM tasks ORDER BY id""")) {
            while (rs.next()) {
                rows.put(rs.getLong(1), new Row(rs.getLong(1), rs.getString(2), rs.getInt(3), rs.getInt(4), rs.getInt(5),
                        rs.getLong(6), rs.getString(7), rs.getString(8)));
            }
        }
        if (rows.size() != enqueued) {
            violation("lost", "count", Math.abs(enqueued - rows.size()), "enqueued " + enqueued + ", stored " + rows.size());
        }
        c.setAutoCommit(false); // a cursor: the event table of a full run does not fit comfortably in memory at once
        try (Statement st = c.createStatement()) {
            st.setFetchSize(10_000);
            try (ResultSet rs = st.executeQuery("""
                    SELECT task_id, id, event, owner_id, lease_token, detail::text FROM task_events ORDER BY task_id, id""")) {
                long current = -1;
                List<Event> history = new ArrayList<>();
                while (rs.next()) {
                    long taskId = rs.getLong(1);
                    if (taskId != current) {
                        if (current >= 0) audit(rows.remove(current), current, history);
                        current = taskId;
                        history.clear();
                    }
                    long tok = rs.getLong(5);
                    Long token = rs.wasNull() ? null : tok;
                    String detail = rs.getString(6);
                    history.add(new Event(rs.getLong(2), rs.getString(3), rs.getString(4), token,
                            detail == null ? null : readJson(detail)));
                }
                if (current >= 0) audit(rows.remove(current), current, history);
            }
        } finally {
            c.rollback();
            c.setAutoCommit(true);
        }
        for (Row r : rows.values()) audit(r, r.id(), List.of()); // tasks without any event
        long total = enqueued;
        return new Verdict(total, lost, doubleAccepted, overBudget, stuck, byRule, examples, stats);
    }

    private static JsonNode readJson(String s) {
        try {
            return JSON.readTree(s);
        } catch (Exception e) {
            return null;
        }
    }

    /** Replays one task's history and compares it with its row. */
    private void audit(Row row, long taskId, List<Event> history) {
        if (row == null) {
            violation("lost", "events_without_task", 1, "task " + taskId + " has events but no row");
            return;
        }
        stat("status." + row.status(), 1);
        String status = "pending";
        String owner = null;
        long token = 0;
        int attempts = 0;
        int requeues = 0;
        int succeededEvents = 0;
        int finalOutcomes = 0;
        String lastAcceptedBy = null;
        long lastAcceptedToken = -1;
        for (Event e : history) {
            stat("event." + e.event(), 1);
            boolean current = "running".equals(status) && Objects.equals(e.owner(), owner) && e.token() != null
                    && e.token() == token;
            switch (e.event()) {
                case "claimed" -> {
                    boolean reclaim = e.detail() != null && e.detail().path("reason").asText("").startsWith("reclaimed");
                    boolean takeover = e.detail() != null && e.detail().has("took_over_from");
                    if (e.token() == null || e.token() != token + 1) {
                        violation("lost", "claim_token_gap", 1, "task " + taskId + " event " + e.id() + ": claimed token "
                                + e.token() + " after token " + token);
                    }
                    if (reclaim) {
                        stat("claims.reclaimed", 1);
                        if (!"running".equals(status) || !Objects.equals(owner, e.owner())) {
                            violation("double_accepted", "reclaim_of_foreign_task", 1, "task " + taskId + " event " + e.id()
                                    + ": " + e.owner() + " reclaimed it while " + status + " owned by " + owner);
                        }
                    } else if (takeover) {
                        stat("claims.takeover", 1);
                        if (!"running".equals(status)) {
                            violation("lost", "takeover_of_non_running", 1, "task " + taskId + " event " + e.id() + ": took over while " + status);
                        }
                        attempts++;
                        requeues++;
                    } else {
                        if (!"pending".equals(status)) {
                            violation("double_accepted", "claim_of_non_pending", 1, "task " + taskId + " event " + e.id()
                                    + ": claimed by " + e.owner() + " while " + status + " owned by " + owner);
                        }
                        attempts++;
                    }
                    status = "running";
                    owner = e.owner();
                    token = e.token() == null ? token + 1 : e.token();
                }
                case "succeeded", "failed", "retry_scheduled", "released" -> {
                    if (!current) {
                        violation("double_accepted", "accepted_from_superseded_owner", 1, "task " + taskId + " event " + e.id()
                                + ": " + e.event() + " by " + e.owner() + "/" + e.token() + " while " + status + " under "
                                + owner + "/" + token);
                    }
                    if (!e.event().equals("released")) {
                        lastAcceptedBy = e.owner();
                        lastAcceptedToken = e.token() == null ? -1 : e.token();
                    }
                    switch (e.event()) {
                        case "succeeded" -> {
                            succeededEvents++;
                            finalOutcomes++;
                            status = "succeeded";
                        }
                        case "failed" -> {
                            finalOutcomes++;
                            status = "failed";
                        }
                        case "retry_scheduled" -> {
                            status = "pending";
                            owner = null;
                        }
                        default -> {
                            status = "pending";
                            owner = null;
                            attempts = Math.max(attempts - 1, 0);
                        }
                    }
                }
                case "requeued", "recovered_on_startup" -> {
                    if (!current) {
                        violation("lost", "requeue_history_mismatch", 1, "task " + taskId + " event " + e.id() + ": "
                                + e.event() + " of " + e.owner() + "/" + e.token() + " while " + status + " under " + owner + "/" + token);
                    }
                    status = "pending";
                    owner = null;
                    requeues++;
                }
                case "quarantined" -> {
                    boolean byOperator = e.detail() != null && "operator".equals(e.detail().path("by").asText());
                    if (!byOperator && !current) {
                        violation("lost", "quarantine_history_mismatch", 1, "task " + taskId + " event " + e.id()
                                + ": quarantined while " + status + " under " + owner + "/" + token);
                    }
                    status = "quarantined";
                }
                case "cancelled" -> status = "cancelled";
                case "retried_by_operator" -> {
                    status = "pending";
                    owner = null;
                    attempts = 0;
                    requeues = 0;
                }
                case "completion_refused" -> {
                    if (current) stat("anomaly.valid_completion_refused", 1);
                    else if (Objects.equals(e.owner(), lastAcceptedBy) && e.token() != null && e.token() == lastAcceptedToken) {
                        stat("completion_refused.already_written_by_same_attempt", 1);
                    }
                }
                case "lease_lost" -> {
                    if (current) stat("anomaly.valid_lease_reported_lost", 1);
                    else if (Objects.equals(e.owner(), lastAcceptedBy) && e.token() != null && e.token() == lastAcceptedToken) {
                        stat("lease_lost.after_own_completion", 1);
                    }
                }
                default -> violation("lost", "unknown_event", 1, "task " + taskId + " event " + e.id() + ": " + e.event());
            }
        }
        if (succeededEvents != ("succeeded".equals(row.status()) ? 1 : 0)) {
            violation("double_accepted", "succeeded_events", 1, "task " + taskId + ": status " + row.status() + " with "
                    + succeededEvents + " succeeded events");
        }
        if (finalOutcomes > 1) {
            violation("double_accepted", "final_outcomes", 1, "task " + taskId + ": " + finalOutcomes + " final outcomes accepted");
        }
        if (!status.equals(row.status()) || token != row.token() || attempts != row.attempts()
                || requeues != row.requeueCount() || !Objects.equals(owner, row.owner())) {
            violation("lost", "row_differs_from_history", 1, "task " + taskId + ": row " + row.status() + "/" + row.owner()
                    + "/token " + row.token() + "/attempts " + row.attempts() + "/requeues " + row.requeueCount()
                    + ", history says " + status + "/" + owner + "/token " + token + "/attempts " + attempts
                    + "/requeues " + requeues);
        }
        if (row.requeueCount() > maxRequeue) {
            violation("over_budget", "requeue_count", 1, "task " + taskId + ": requeue_count " + row.requeueCount()
                    + " > TASK_MAX_REQUEUE " + maxRequeue);
        }
        if (row.attempts() > row.maxAttempts() + row.requeueCount()) {
            violation("over_budget", "attempts", 1, "task " + taskId + ": attempts " + row.attempts() + " > max_attempts "
                    + row.maxAttempts() + " + requeue_count " + row.requeueCount());
        }
        if ("quarantined".equals(row.status())) {
            String err = row.lastError() == null ? "" : row.lastError();
            if (row.requeueCount() < maxRequeue || !err.contains("requeue budget") || !err.contains("exhausted")) {
                violation("over_budget", "unexplained_quarantine", 1, "task " + taskId + ": quarantined with requeue_count "
                        + row.requeueCount() + ", last_error: " + err);
            }
        }
        if ("pending".equals(row.status()) || "running".equals(row.status())) {
            violation("stuck", "not_terminal", 1, "task " + taskId + ": still " + row.status()
                    + (row.owner() == null ? "" : " owned by " + row.owner()));
        }
    }

    private void violation(String counter, String rule, long n, String example) {
        switch (counter) {
            case "lost" -> lost += n;
            case "double_accepted" -> doubleAccepted += n;
            case "over_budget" -> overBudget += n;
            case "stuck" -> stuck += n;
            default -> throw new IllegalArgumentException(counter);
        }
        String key = counter + "." + rule;
        byRule.merge(key, n, Long::sum);
        List<String> ex = examples.computeIfAbsent(key, k -> new ArrayList<>());
        if (ex.size() < EXAMPLES) ex.add(example);
    }

    private void stat(String key, long n) {
        stats.merge(key, n, Long::sum);
    }
}

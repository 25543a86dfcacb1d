package pgdispatch.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The end-of-run check over {@code tasks} and {@code task_events}: replays each task's event history
 * (in event id order, which for one task follows the row's lock order: every transition inserts its
 * event in the statement that updated the row) and compares it with the row, with what the workload
 * enqueued (by id) and with the result its handler must produce. Events carry the lease token the node
 * presented, so a write the fence should have refused shows as one from a superseded lease.
 * Violations fall into five counters of the summary line (each rule: docs/RELIABILITY.md):
 * <ul>
 *   <li><b>lost</b>: an enqueued task id missing from the table, a row nobody enqueued (a substitute), or
 *       a row its own history does not explain (status, owner, token, attempts or requeue count differ
 *       from the replay; a claim whose token is not the previous token + 1: a transition without its event).</li>
 *   <li><b>double_accepted</b>: a workload task stored twice; more than one accepted completion of a task
 *       ({@code succeeded} events must be 1 for a succeeded task and 0 for any other; at most one final
 *       outcome), or an accepted write ({@code succeeded}, {@code failed}, {@code retry_scheduled},
 *       {@code released}) whose owner and lease token are not those of the latest claim while the task
 *       was running under it: a write from a superseded lease.</li>
 *   <li><b>over_budget</b>: {@code requeue_count > TASK_MAX_REQUEUE}; {@code attempts > max_attempts +
 *       requeue_count}; a retry scheduled with no attempt left; a quarantine not explained by an exhausted
 *       requeue budget (count below the budget, or last_error not saying so).</li>
 *   <li><b>stuck</b>: a task still pending or running after the drain deadline.</li>
 *   <li><b>wrong_result</b>: a finished task whose outcome is not what its handler produces for its payload
 *       and attempt (docs/RELIABILITY.md lists them per kind).</li>
 * </ul>
 * And a run that did not exercise the faults it claims to survive fails too: fewer take-overs, lease
 * refusals, requeues or zombie refusals than the minimum are named in {@link Verdict#unexercised()}.
 * Arithmetic on counts is in {@code long}: a budget sum in {@code int} wraps.
 * SQL here is read-only and outside the store on purpose: this is an audit tool, and it must not
 * share the code it audits.
 */
final class Invariants {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int EXAMPLES = 5;

    /** The fault effects a run must show, in summary-line order. */
    static final List<String> EFFECTS = List.of("takeovers", "refusals", "requeues", "zombie_refusals");

    /** The verdict: the five counters, effects missing, per-rule counts and a few example task ids per rule. */
    record Verdict(long tasks, long lost, long doubleAccepted, long overBudget, long stuck, long wrongResult,
                   List<String> unexercised, Map<String, Long> byRule, Map<String, List<String>> examples,
                   Map<String, Long> stats) {
        boolean ok() {
            return lost == 0 && doubleAccepted == 0 && overBudget == 0 && stuck == 0 && wrongResult == 0 && unexercised.isEmpty();
        }

        long effect(String name) {
            return stats.getOrDefault("effect." + name, 0L);
        }
    }

    /**
     * What the workload enqueued as one task: its key (wave/group/index, unique per task) and what its
     * handler must produce: {@code noop} null; {@code sleep} {"slept_ms": ms}; {@code fail} an error for
     * attempts up to {@code failTimes}, then {"succeeded_on_attempt": n}.
     */
    record Expected(String key, String kind, long sleepMs, int failTimes, int maxAttempts) {}

    /** A {@code tasks} row as the checker reads it; {@code key} from the payload's w/g/i (null when absent). */
    record Row(long id, String key, String status, long attempts, long maxAttempts, long requeueCount, long token,
               String owner, String lastError, String result) {}

    /** A {@code task_events} row. */
    record Event(long taskId, long id, String event, String owner, Long token, JsonNode detail) {}

    private final long maxRequeue;
    private final Map<String, Long> minimum;
    private final Map<String, Long> byRule = new TreeMap<>();
    private final Map<String, List<String>> examples = new TreeMap<>();
    private final Map<String, Long> stats = new TreeMap<>();
    private Map<Long, Expected> expected = Map.of();
    private Map<Long, Row> rows = new LinkedHashMap<>();
    private long lost;
    private long doubleAccepted;
    private long overBudget;
    private long stuck;
    private long wrongResult;

    /** {@code minimum}: for each name of {@link #EFFECTS}, how many the run must show (absent: 0). */
    Invariants(long maxRequeue, Map<String, Long> minimum) {
        this.maxRequeue = maxRequeue;
        this.minimum = Map.copyOf(minimum);
    }

    /** Checks the whole database against {@code expected}: every task the workload committed, by id. */
    Verdict check(Connection c, Map<Long, Expected> expected) throws SQLException {
        List<Row> all = new ArrayList<>();
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("""
                SELECT id, payload->>'w' || '/' || (payload->>'g') || '/' || (payload->>'i'), status, attempts,
                       max_attempts, requeue_count, lease_token, owner_id, last_error, result::text
                  FROM tasks ORDER BY id""")) {
            while (rs.next()) {
                all.add(new Row(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getLong(4), rs.getLong(5), rs.getLong(6),
                        rs.getLong(7), rs.getString(8), rs.getString(9), rs.getString(10)));
            }
        }
        begin(expected, all);
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
                        if (current >= 0) task(current, history);
                        current = taskId;
                        history.clear();
                    }
                    long tok = rs.getLong(5);
                    Long token = rs.wasNull() ? null : tok;
                    String detail = rs.getString(6);
                    history.add(new Event(taskId, rs.getLong(2), rs.getString(3), rs.getString(4), token,
                            detail == null ? null : readJson(detail)));
                }
                if (current >= 0) task(current, history);
            }
        } finally {
            c.rollback();
            c.setAutoCommit(true);
        }
        return finish();
    }

    /** The same check over a crafted history ({@code events} in any order): the unit tests' entry. */
    Verdict check(Map<Long, Expected> expected, List<Row> all, List<Event> events) {
        begin(expected, all);
        Map<Long, List<Event>> byTask = new TreeMap<>();
        events.stream().sorted(java.util.Comparator.comparingLong(Event::id))
                .forEach(e -> byTask.computeIfAbsent(e.taskId(), k -> new ArrayList<>()).add(e));
        byTask.forEach(this::task);
        return finish();
    }

    /** Tasks by id: each enqueued id has its row, each row was enqueued, no workload task is stored twice. */
    private void begin(Map<Long, Expected> expectedById, List<Row> all) {
        this.expected = expectedById;
        this.rows = new LinkedHashMap<>();
        Map<String, Long> byKey = new HashMap<>();
        for (Row r : all) {
            rows.put(r.id(), r);
            if (!expectedById.containsKey(r.id())) {
                violation("lost", "unknown_task", "task " + r.id() + " (payload key " + r.key() + ") was never enqueued by the workload");
            }
            if (r.key() != null) {
                Long other = byKey.putIfAbsent(r.key(), r.id());
                if (other != null) {
                    violation("double_accepted", "duplicate_task", "tasks " + other + " and " + r.id() + " are both workload task " + r.key());
                }
            }
        }
        for (var e : expectedById.entrySet()) {
            if (!rows.containsKey(e.getKey())) {
                violation("lost", "missing_task", "task " + e.getKey() + " (workload task " + e.getValue().key() + ") has no row");
            }
        }
    }

    private Verdict finish() {
        for (Row r : List.copyOf(rows.values())) task(r.id(), List.of()); // tasks without any event
        List<String> unexercised = new ArrayList<>();
        for (String effect : EFFECTS) {
            long need = minimum.getOrDefault(effect, 0L);
            long seen = stats.getOrDefault("effect." + effect, 0L);
            if (seen < need) unexercised.add(effect + " " + seen + " < " + need);
        }
        return new Verdict(expected.size(), lost, doubleAccepted, overBudget, stuck, wrongResult, unexercised, byRule,
                examples, stats);
    }

    private static JsonNode readJson(String s) {
        try {
            return JSON.readTree(s);
        } catch (Exception e) {
            return null;
        }
    }

    /** Replays one task's history and compares it with its row and its expected result. */
    private void task(long taskId, List<Event> history) {
        Row row = rows.remove(taskId);
        if (row == null) {
            violation("lost", "events_without_task", "task " + taskId + " has events but no row");
            return;
        }
        stat("status." + row.status(), 1);
        String status = "pending";
        String owner = null;
        long token = 0;
        long attempts = 0;
        long requeues = 0;
        long succeededEvents = 0;
        long finalOutcomes = 0;
        long attemptAtSuccess = -1;
        long attemptAtFailure = -1;
        String lastAcceptedBy = null;
        boolean compensating = false; // in the compensation phase (V10_5): waiting steps are 'compensating'
        String quarantinedBy = null;
        long lastAcceptedToken = -1;
        for (Event e : history) {
            stat("event." + e.event(), 1);
            boolean current = "running".equals(status) && Objects.equals(e.owner(), owner) && e.token() != null
                    && e.token() == token;
            switch (e.event()) {
                case "claimed", "compensation_started" -> {
                    boolean reclaim = e.detail() != null && e.detail().path("reason").asText("").startsWith("reclaimed");
                    boolean takeover = e.detail() != null && e.detail().has("took_over_from");
                    if (e.token() == null || e.token() != token + 1) {
                        violation("lost", "claim_token_gap", "task " + taskId + " event " + e.id() + ": claimed token "
                                + e.token() + " after token " + token);
                    }
                    if (reclaim) {
                        stat("claims.reclaimed", 1);
                        if (!"running".equals(status) || !Objects.equals(owner, e.owner())) {
                            violation("double_accepted", "reclaim_of_foreign_task", "task " + taskId + " event " + e.id()
                                    + ": " + e.owner() + " reclaimed it while " + status + " owned by " + owner);
                        }
                    } else if (takeover) {
                        stat("effect.takeovers", 1);
                        if (!"running".equals(status)) {
                            violation("lost", "takeover_of_non_running", "task " + taskId + " event " + e.id() + ": took over while " + status);
                        }
                        attempts++;
                        requeues++;
                    } else {
                        if (!(compensating ? "compensating" : "pending").equals(status)) {
                            violation("double_accepted", "claim_of_non_pending", "task " + taskId + " event " + e.id()
                                    + ": claimed by " + e.owner() + " while " + status + " owned by " + owner);
                        }
                        attempts++;
                    }
                    status = "running";
                    owner = e.owner();
                    token = e.token() == null ? token + 1 : e.token();
                }
                case "succeeded", "failed", "retry_scheduled", "released", "compensated", "compensation_failed" -> {
                    if (!current) {
                        violation("double_accepted", "accepted_from_superseded_owner", "task " + taskId + " event " + e.id()
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
                            attemptAtSuccess = attempts;
                            status = "succeeded";
                        }
                        case "failed" -> {
                            boolean permanent = e.detail() != null && e.detail().path("permanent").asBoolean(false);
                            if (!permanent && attempts < row.maxAttempts()) {
                                violation("wrong_result", "failed_with_attempts_left", "task " + taskId + " event " + e.id()
                                        + ": failed for good at attempt " + attempts + " of max_attempts " + row.maxAttempts());
                            }
                            if (enteredCompensation(e)) {
                                status = "compensating";
                                owner = null;
                                attempts = 0;
                                requeues = 0;
                                compensating = true;
                            } else {
                                finalOutcomes++;
                                attemptAtFailure = attempts;
                                status = "failed";
                            }
                        }
                        case "compensated" -> {
                            finalOutcomes++;
                            status = "compensated";
                        }
                        case "compensation_failed" -> {
                            status = "compensating";
                            owner = null;
                        }
                        case "retry_scheduled" -> {
                            if (attempts >= row.maxAttempts()) {
                                violation("over_budget", "retry_past_budget", "task " + taskId + " event " + e.id()
                                        + ": retry scheduled after attempt " + attempts + " of max_attempts " + row.maxAttempts());
                            }
                            status = "pending";
                            owner = null;
                        }
                        default -> {
                            status = compensating ? "compensating" : "pending";
                            owner = null;
                            attempts = Math.max(attempts - 1, 0);
                        }
                    }
                }
                case "requeued", "recovered_on_startup" -> {
                    if (!current) {
                        violation("lost", "requeue_history_mismatch", "task " + taskId + " event " + e.id() + ": "
                                + e.event() + " of " + e.owner() + "/" + e.token() + " while " + status + " under " + owner + "/" + token);
                    }
                    stat("effect.requeues", 1);
                    status = compensating ? "compensating" : "pending";
                    owner = null;
                    requeues++;
                }
                case "quarantined" -> {
                    boolean byOperator = e.detail() != null && "operator".equals(e.detail().path("by").asText());
                    if (!byOperator && !current) {
                        violation("lost", "quarantine_history_mismatch", "task " + taskId + " event " + e.id()
                                + ": quarantined while " + status + " under " + owner + "/" + token);
                    }
                    status = "quarantined";
                    quarantinedBy = e.detail() == null ? null : e.detail().path("by").asText(null);
                }
                case "cancelled" -> {
                    if (enteredCompensation(e)) {
                        status = "compensating";
                        owner = null;
                        attempts = 0;
                        requeues = 0;
                        compensating = true;
                    } else {
                        status = "cancelled";
                    }
                }
                case "retried_by_operator" -> {
                    compensating = false;
                    status = "pending";
                    owner = null;
                    attempts = 0;
                    requeues = 0;
                }
                case "completion_refused" -> {
                    if (current) stat("anomaly.valid_completion_refused", 1);
                    else if (Objects.equals(e.owner(), lastAcceptedBy) && e.token() != null && e.token() == lastAcceptedToken) {
                        stat("completion_refused.already_written_by_same_attempt", 1);
                    } else {
                        stat("effect.zombie_refusals", 1);
                    }
                }
                case "lease_lost" -> {
                    if (current) stat("anomaly.valid_lease_reported_lost", 1);
                    else if (Objects.equals(e.owner(), lastAcceptedBy) && e.token() != null && e.token() == lastAcceptedToken) {
                        stat("lease_lost.after_own_completion", 1);
                    } else {
                        stat("effect.refusals", 1);
                    }
                }
                default -> violation("lost", "unknown_event", "task " + taskId + " event " + e.id() + ": " + e.event());
            }
        }
        if (succeededEvents != ("succeeded".equals(row.status()) ? 1 : 0)) {
            violation("double_accepted", "succeeded_events", "task " + taskId + ": status " + row.status() + " with "
                    + succeededEvents + " succeeded events");
        }
        if (finalOutcomes > 1) {
            violation("double_accepted", "final_outcomes", "task " + taskId + ": " + finalOutcomes + " final outcomes accepted");
        }
        if (!status.equals(row.status()) || token != row.token() || attempts != row.attempts()
                || requeues != row.requeueCount() || !Objects.equals(owner, row.owner())) {
            violation("lost", "row_differs_from_history", "task " + taskId + ": row " + row.status() + "/" + row.owner()
                    + "/token " + row.token() + "/attempts " + row.attempts() + "/requeues " + row.requeueCount()
                    + ", history says " + status + "/" + owner + "/token " + token + "/attempts " + attempts
                    + "/requeues " + requeues);
        }
        budget(taskId, row, quarantinedBy);
        Expected want = expected.get(taskId);
        if (want != null) result(taskId, row, want, attemptAtSuccess, attemptAtFailure);
        if ("pending".equals(row.status()) || "running".equals(row.status()) || "compensating".equals(row.status())) {
            violation("stuck", "not_terminal", "task " + taskId + ": still " + row.status()
                    + (row.owner() == null ? "" : " owned by " + row.owner()));
        }
    }

    private void budget(long taskId, Row row, String quarantinedBy) {
        if (row.requeueCount() > maxRequeue) {
            violation("over_budget", "requeue_count", "task " + taskId + ": requeue_count " + row.requeueCount()
                    + " > TASK_MAX_REQUEUE " + maxRequeue);
        }
        if (row.attempts() > row.maxAttempts() + row.requeueCount()) { // long: no wrap
            violation("over_budget", "attempts", "task " + taskId + ": attempts " + row.attempts() + " > max_attempts "
                    + row.maxAttempts() + " + requeue_count " + row.requeueCount());
        }
        if ("quarantined".equals(row.status()) && !"compensation".equals(quarantinedBy)) {
            String err = row.lastError() == null ? "" : row.lastError();
            if (row.requeueCount() < maxRequeue || !err.contains("requeue budget") || !err.contains("exhausted")) {
                violation("over_budget", "unexplained_quarantine", "task " + taskId + ": quarantined with requeue_count "
                        + row.requeueCount() + ", last_error: " + err);
            }
        }
    }

    /** The finished task's outcome against what its handler produces for its payload (quarantine is always possible). */
    private void result(long taskId, Row row, Expected want, long attemptAtSuccess, long attemptAtFailure) {
        // the faulty handlers (FaultyHandlers) may end either way: their rule is the stall watch's
        if (want.kind().startsWith("chaos.")) return;
        String wrong = null;
        switch (row.status()) {
            case "succeeded" -> {
                JsonNode got = row.result() == null ? null : readJson(row.result());
                String expect = switch (want.kind()) {
                    case "noop" -> null;
                    case "sleep" -> "{\"slept_ms\":" + want.sleepMs() + "}";
                    case "fail" -> "{\"succeeded_on_attempt\":" + attemptAtSuccess + "}";
                    default -> "(no rule for kind " + want.kind() + ")";
                };
                JsonNode expectJson = expect == null ? null : readJson(expect);
                if (!Objects.equals(got, expectJson)) {
                    wrong = "succeeded with result " + row.result() + ", expected " + expect;
                } else if ("fail".equals(want.kind()) && attemptAtSuccess <= want.failTimes()) {
                    wrong = "succeeded on attempt " + attemptAtSuccess + " but fails its first " + want.failTimes();
                }
            }
            case "failed" -> {
                String err = row.lastError() == null ? "" : row.lastError();
                if (!"fail".equals(want.kind()) || !err.contains("fails as asked")) {
                    wrong = want.kind() + " failed: " + err;
                } else if (attemptAtFailure > want.failTimes()) {
                    wrong = "failed on attempt " + attemptAtFailure + " but only its first " + want.failTimes() + " fail";
                }
            }
            default -> { }
        }
        if (wrong != null) violation("wrong_result", "outcome_differs", "task " + taskId + " (" + want.key() + "): " + wrong);
    }

    /** A failure or cancel that sent a compensable task to its compensation step (V10_5) rather than ending it. */
    private static boolean enteredCompensation(Event e) {
        return e.detail() != null && "compensating".equals(e.detail().path("status").asText(null));
    }

    private void violation(String counter, String rule, String example) {
        switch (counter) {
            case "lost" -> lost++;
            case "double_accepted" -> doubleAccepted++;
            case "over_budget" -> overBudget++;
            case "stuck" -> stuck++;
            case "wrong_result" -> wrongResult++;
            default -> throw new IllegalArgumentException(counter);
        }
        String key = counter + "." + rule;
        byRule.merge(key, 1L, Long::sum);
        List<String> ex = examples.computeIfAbsent(key, k -> new ArrayList<>());
        if (ex.size() < EXAMPLES) ex.add(example);
    }

    private void stat(String key, long n) {
        stats.merge(key, n, Long::sum);
    }
}

package pgdispatch.ui;

import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;

/**
 * What each page template renders: plain values, already formatted, so the templates hold no logic
 * beyond loops and conditions. Every string reaches the page through jte's HTML escaping.
 */
public final class Views {
    private Views() {}

    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss'Z'");

    /** What every page's frame needs: where it is mounted, who may act, the database clock. */
    public record Page(String prefix, String title, String nav, boolean actionsEnabled, boolean signedIn, String csrf,
                       String flash, String now, String version) {
        /** A link to a dashboard path ({@code /tasks}) under the proxy's prefix and the mount point. */
        public String url(String path) {
            return prefix + Dashboard.MOUNT + path;
        }

        public String asset(String name) {
            return url("/assets/" + name);
        }

        public String active(String item) {
            return item.equals(nav) ? "active" : "";
        }

        public boolean canAct() {
            return actionsEnabled && signedIn;
        }
    }

    /** A queue on the overview; {@code paused} is who paused it, when and why (null: active); {@code action} null when the viewer cannot act. */
    public record QueueRow(String queue, long waiting, long pending, long running, long succeeded, long failed, long cancelled,
                           long quarantined, long compensating, long compensated, String oldestPending, long stale,
                           String tasksUrl, String paused, Action action) {}

    public record StuckRow(long id, String owner, long leaseToken, String reason, String action, String url) {}

    /** The throughput chart's series as comma-separated numbers (read by dashboard.js from data attributes). */
    public record Chart(String minutes, String claimed, String succeeded, String failed, long totalClaimed,
                        long totalSucceeded, long totalFailed) {}

    public record Overview(Page page, List<QueueRow> queues, List<StuckRow> stuck, List<String> withoutHandler,
                           Chart chart, long liveNodes, long otherNodes,
                           List<LimitRow> limits) {}

    public record TaskRow(long id, String url, String queue, String kind, String status, String attempts, String owner,
                          String created, String lastError) {}

    /** The filter form as typed (re-shown with an error) and the statuses it offers. */
    public record FilterForm(String id, String queue, String kind, String status, String owner, String from, String to,
                             List<String> statuses) {}

    public record TaskList(Page page, FilterForm form, List<String> errors, List<TaskRow> tasks, String nextUrl,
                           String firstUrl) {}

    public record Field(String name, String value) {}

    public record EventRow(long id, String at, String event, String owner, String token, String detail) {}

    public record Attempt(String title, List<EventRow> events) {}

    public record Action(String name, String label, String url) {}

    public record TaskDetail(Page page, long id, String status, List<Field> fields, List<Field> lease, String payload,
                             String result, String progress, String lastError, List<Attempt> attempts,
                             List<Action> actions, String stuckReason) {}

    /** The confirmation of an action on {@code subject} ("task #42", "queue emails"), which is {@code state} now. */
    public record Confirm(Page page, String subject, String state, Action action, String explanation, String backUrl) {}

    public record NodeRow(String nodeId, String state, String incarnation, String host, long pid, String version,
                          String queues, String kinds, long held, String heartbeatAge, String started, String tasksUrl) {}

    public record Nodes(Page page, List<NodeRow> nodes) {}

    /** A concurrency limit; {@code over}: more of its tasks run than it allows now (it was lowered). */
    public record LimitRow(String scope, String name, int max, long running, boolean over, String changed, String by,
                           String tasksUrl, String clearUrl) {}

    /** The set form as typed (re-shown with an error). */
    public record LimitForm(String scope, String name, String max) {}

    public record Limits(Page page, List<LimitRow> limits, List<String> errors, LimitForm form) {}

    /**
     * A schedule; {@code next}: its next fire time, or why there is none; {@code history}: its latest
     * recorded decisions (fired, backfilled, run now, skipped), newest first, as one line each.
     */
    public record ScheduleRow(String name, boolean enabled, String timing, String task, String missed, String next,
                              String last, String by, List<String> history, String toggleUrl, String runUrl) {}

    public record Schedules(Page page, List<ScheduleRow> schedules) {}

    public record Message(Page page, int status, String title, List<String> lines) {}

    public record Login(Page page, String error) {}

    static String time(OffsetDateTime t) {
        if (OffsetDateTime.MAX.equals(t)) return "infinity"; // a legacy run_at from before V9 (TaskQueries)
        if (OffsetDateTime.MIN.equals(t)) return "-infinity";
        return t == null ? "" : t.withOffsetSameInstant(ZoneOffset.UTC).format(TIME);
    }

    /** A duration in seconds as an operator reads it: {@code 42 s}, {@code 3 min 5 s}, {@code 2 h 10 min}. */
    static String age(double seconds) {
        long s = Math.round(Math.abs(seconds));
        String sign = seconds < 0 ? "-" : "";
        if (s < 60) return sign + s + " s";
        if (s < 3600) return sign + (s / 60) + " min " + (s % 60) + " s";
        if (s < 86_400) return sign + (s / 3600) + " h " + (s % 3600 / 60) + " min";
        return sign + (s / 86_400) + " d " + (s % 86_400 / 3600) + " h";
    }
}

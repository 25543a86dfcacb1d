package pgdispatch.ui;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskQueries.EventView;
import pgdispatch.store.TaskQueries.TaskView;
import pgdispatch.ui.Views.Field;
import pgdispatch.ui.Views.Page;

/**
 * One task: its row, its lease measured by the database clock, and its events grouped by attempt
 * (each {@code claimed} event opens one), so "who ran this, when, and why did it run again" reads top down.
 */
final class TaskDetailView {
    private static final ObjectMapper JSON = new ObjectMapper();

    static final int STALE_SCANNED = 1000;

    private final Dashboard dashboard;

    TaskDetailView(Dashboard dashboard) {
        this.dashboard = dashboard;
    }

    Optional<Views.TaskDetail> build(Page page, long id) {
        TaskQueries q = dashboard.queries();
        Optional<TaskView> found = q.task(id);
        if (found.isEmpty()) return Optional.empty();
        TaskView t = found.get();
        OffsetDateTime now = q.now();
        List<Field> fields = List.of(
                new Field("queue", t.queue()), new Field("kind", t.kind()), new Field("status", t.status()),
                new Field("priority", Integer.toString(t.priority())),
                new Field("attempts", t.attempts() + " of " + t.maxAttempts()),
                new Field("requeues", Integer.toString(t.requeueCount())),
                new Field("run at", Views.time(t.runAt()) + relative(now, t.runAt())),
                new Field("created", Views.time(t.createdAt())),
                new Field("finished", Views.time(t.finishedAt())),
                new Field("idempotency key", t.idempotencyKey() == null ? "" : t.idempotencyKey()));
        List<Field> lease = List.of(
                new Field("owner", t.owner() == null ? "" : t.owner()),
                new Field("lease token", Long.toString(t.leaseToken())),
                new Field("lease expires", t.leaseExpiresAt() == null ? "" : Views.time(t.leaseExpiresAt()) + relative(now, t.leaseExpiresAt())),
                new Field("last progress", t.lastHeartbeatAt() == null ? "" : Views.time(t.lastHeartbeatAt()) + " ("
                        + Views.age(Duration.between(t.lastHeartbeatAt(), now).toMillis() / 1000.0) + " ago)"));
        // stale sets are small (the reaper empties them every sweep); the bound keeps a pathological one cheap
        String stuck = !t.status().equals("running") ? null : dashboard.stale(STALE_SCANNED).stream().filter(s -> s.id() == id)
                .map(s -> s.reason() + "; the reaper will " + s.action() + " it").findFirst().orElse(null);
        return Optional.of(new Views.TaskDetail(page, id, t.status(), fields, lease, Dashboard.pretty(t.payload()),
                Dashboard.pretty(t.result()), Dashboard.pretty(t.progress()), t.lastError(), attempts(q.events(id)),
                page.canAct() ? dashboard.actionsFor(page, id, t.status()) : List.of(), stuck));
    }

    /** Events before the first claim form their own group; each claim starts the next attempt's group. */
    static List<Views.Attempt> attempts(List<EventView> events) {
        List<Views.Attempt> out = new ArrayList<>();
        List<Views.EventRow> current = new ArrayList<>();
        String title = "before the first claim";
        for (EventView e : events) {
            if (e.event().equals("claimed")) {
                if (!current.isEmpty()) out.add(new Views.Attempt(title, current));
                current = new ArrayList<>();
                JsonNode d = detail(e.detail());
                title = "attempt " + (d != null && d.hasNonNull("attempt") ? d.get("attempt").asText() : "?") + ": "
                        + (e.owner() == null ? "?" : e.owner()) + ", lease token " + e.leaseToken()
                        + (d != null && d.hasNonNull("took_over_from") ? ", taken over from " + d.get("took_over_from").asText() : "");
            }
            current.add(new Views.EventRow(e.id(), Views.time(e.at()), e.event(), e.owner() == null ? "" : e.owner(),
                    e.leaseToken() == null ? "" : e.leaseToken().toString(), e.detail() == null ? "" : e.detail()));
        }
        if (!current.isEmpty()) out.add(new Views.Attempt(title, current));
        return out;
    }

    private static JsonNode detail(String json) {
        if (json == null) return null;
        try {
            return JSON.readTree(json);
        } catch (java.io.IOException e) {
            return null;
        }
    }

    private static String relative(OffsetDateTime now, OffsetDateTime t) {
        if (t == null || OffsetDateTime.MAX.equals(t) || OffsetDateTime.MIN.equals(t)) return "";
        double s = Duration.between(now, t).toMillis() / 1000.0;
        return s >= 0 ? " (in " + Views.age(s) + ")" : " (" + Views.age(-s) + " ago)";
    }
}

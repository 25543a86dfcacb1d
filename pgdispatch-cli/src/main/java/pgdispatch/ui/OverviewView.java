package pgdispatch.ui;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import pgdispatch.store.NodeStore;
import pgdispatch.store.QueueStore;
import pgdispatch.store.TaskQueries;
import pgdispatch.ui.Views.Page;

/** The overview (per queue, stuck tasks, throughput over the last hour) and the nodes page, from the store's read-only queries. */
final class OverviewView {
    /** The chart's window: the last hour, one point per minute. */
    static final int MINUTES = 60;
    static final int STUCK_SHOWN = 50;

    private final Dashboard dashboard;

    OverviewView(Dashboard dashboard) {
        this.dashboard = dashboard;
    }

    Views.Overview build(Page page) {
        TaskQueries q = dashboard.queries();
        List<NodeStore.Node> nodes = dashboard.nodes().list(dashboard.config().nodeTimeout());
        Map<String, String> paused = new TreeMap<>();
        for (String name : dashboard.queues().paused()) {
            QueueStore.QueueState st = dashboard.queues().state(name);
            paused.put(name, "since " + Views.time(st.changedAt()) + " by " + st.changedBy()
                    + (st.reason() == null ? "" : ": " + st.reason()));
        }
        // every queue with tasks, plus the paused ones and those a live node serves (a queue can be paused before its first task)
        Map<String, TaskQueries.QueueStats> stats = new TreeMap<>();
        q.queueStats(dashboard.config().stale(), dashboard.config().nodeTimeout()).forEach(st -> stats.put(st.queue(), st));
        Set<String> names = new TreeSet<>(stats.keySet());
        names.addAll(paused.keySet());
        nodes.stream().filter(NodeStore.Node::alive).forEach(n -> names.addAll(n.queues()));
        List<Views.QueueRow> queues = names.stream().map(name -> {
            TaskQueries.QueueStats st = stats.get(name);
            Map<String, Long> b = st == null ? Map.of() : st.byStatus();
            long pending = b.getOrDefault("pending", 0L);
            String action = paused.containsKey(name) ? "resume" : "pause";
            return new Views.QueueRow(name, b.getOrDefault("waiting", 0L), pending, b.getOrDefault("running", 0L), b.getOrDefault("succeeded", 0L),
                    b.getOrDefault("failed", 0L), b.getOrDefault("cancelled", 0L), b.getOrDefault("quarantined", 0L),
                    b.getOrDefault("compensating", 0L), b.getOrDefault("compensated", 0L),
                    pending == 0 || st == null ? "" : Views.age(st.lagSeconds()), st == null ? 0 : st.stale(),
                    page.url("/tasks?queue=" + enc(name)), paused.get(name),
                    page.canAct() ? new Views.Action(action, action.equals("pause") ? "Pause" : "Resume",
                            page.url("/queues/" + enc(name) + "/" + action)) : null);
        }).toList();
        List<Views.StuckRow> stuck = dashboard.stale(STUCK_SHOWN).stream()
                .map(t -> new Views.StuckRow(t.id(), t.owner(), t.leaseToken(), t.reason(), "the reaper will " + t.action() + " it",
                        page.url("/tasks/" + t.id()))).toList();
        List<String> withoutHandler = q.pendingWithoutHandler(dashboard.config().nodeTimeout()).entrySet().stream()
                .map(e -> e.getValue() + " pending " + e.getKey() + " task(s): no live node serves this kind in its queue")
                .toList();
        List<TaskQueries.Throughput> t = q.throughput(MINUTES);
        Views.Chart chart = new Views.Chart(
                t.stream().map(p -> Long.toString(p.minute().toEpochSecond())).collect(Collectors.joining(",")),
                t.stream().map(p -> Long.toString(p.claimed())).collect(Collectors.joining(",")),
                t.stream().map(p -> Long.toString(p.succeeded())).collect(Collectors.joining(",")),
                t.stream().map(p -> Long.toString(p.failed())).collect(Collectors.joining(",")),
                t.stream().mapToLong(TaskQueries.Throughput::claimed).sum(),
                t.stream().mapToLong(TaskQueries.Throughput::succeeded).sum(),
                t.stream().mapToLong(TaskQueries.Throughput::failed).sum());
        long live = nodes.stream().filter(NodeStore.Node::alive).count();
        return new Views.Overview(page, queues, stuck, withoutHandler, chart, live, nodes.size() - live, dashboard.limitRows(page));
    }

    Views.Nodes nodes(Page page) {
        Map<String, Long> held = dashboard.queries().runningByOwner();
        List<Views.NodeRow> rows = dashboard.nodes().list(dashboard.config().nodeTimeout()).stream().map(n -> new Views.NodeRow(
                n.nodeId(), n.alive() ? "live" : n.stoppedAt() != null ? "stopped" : "dead", n.incarnation().toString(),
                n.host(), n.pid(), n.version(), String.join(", ", n.queues()), String.join(", ", n.kinds()),
                held.getOrDefault(n.nodeId(), 0L), Views.age(n.secondsSinceSeen()), Views.time(n.startedAt()),
                page.url("/tasks?status=running&owner=" + enc(n.nodeId())))).toList();
        return new Views.Nodes(page, rows);
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }
}

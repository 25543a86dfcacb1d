package pgdispatch.ui;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import pgdispatch.store.NodeStore;
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
        List<Views.QueueRow> queues = q.queueStats(dashboard.config().stale(), dashboard.config().nodeTimeout()).stream().map(s -> {
            Map<String, Long> b = s.byStatus();
            return new Views.QueueRow(s.queue(), b.get("pending"), b.get("running"), b.get("succeeded"), b.get("failed"),
                    b.get("cancelled"), b.get("quarantined"), b.get("compensating"), b.get("compensated"), b.get("pending") == 0 ? "" : Views.age(s.lagSeconds()), s.stale(),
                    page.url("/tasks?queue=" + enc(s.queue())));
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
        List<NodeStore.Node> nodes = dashboard.nodes().list(dashboard.config().nodeTimeout());
        long live = nodes.stream().filter(NodeStore.Node::alive).count();
        return new Views.Overview(page, queues, stuck, withoutHandler, chart, live, nodes.size() - live);
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

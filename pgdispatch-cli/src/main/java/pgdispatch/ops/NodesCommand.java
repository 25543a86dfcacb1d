package pgdispatch.ops;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.NodeStore;
import pgdispatch.store.TaskQueries;

/** {@code nodes list|forget}: the {@code dispatcher_nodes} rows, live or dead by the database clock. */
@Command(name = "nodes", mixinStandardHelpOptions = true, description = "List dispatcher nodes, or forget a dead one.",
        subcommands = {NodesCommand.ListNodes.class, NodesCommand.Forget.class})
final class NodesCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required: list or forget");
    }

    /** live, dead (not seen for TASK_NODE_TIMEOUT_S) or stopped (shut down cleanly). */
    static String state(NodeStore.Node n) {
        return n.stoppedAt() != null ? "stopped" : n.alive() ? "live" : "dead";
    }

    /** {@code nodes list}. */
    @Command(name = "list", mixinStandardHelpOptions = true, description = "Nodes with state, last heartbeat, queues and running tasks.")
    static final class ListNodes implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "Print JSON")
        boolean json;

        @Override
        public Integer call() {
            DispatcherConfig cfg = Env.config();
            try (Database db = TasksCommand.open("nodes")) {
                List<NodeStore.Node> nodes = new NodeStore(db).list(cfg.nodeTimeout());
                Map<String, Long> running = new TaskQueries(db).runningByOwner();
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    out.println(Json.write(nodes.stream().map(n -> {
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("node_id", n.nodeId());
                        m.put("state", state(n));
                        m.put("host", n.host());
                        m.put("pid", n.pid());
                        m.put("version", n.version());
                        m.put("queues", n.queues());
                        m.put("kinds", n.kinds());
                        m.put("started_at", Json.time(n.startedAt()));
                        m.put("last_seen_at", Json.time(n.lastSeenAt()));
                        m.put("seconds_since_seen", n.secondsSinceSeen());
                        m.put("stopped_at", Json.time(n.stoppedAt()));
                        m.put("running_tasks", running.getOrDefault(n.nodeId(), 0L));
                        return m;
                    }).toList()));
                    return Main.OK;
                }
                if (nodes.isEmpty()) {
                    out.println("(no nodes registered)");
                    return Main.OK;
                }
                out.printf("%-24s %-8s %-20s %8s %12s %8s %-20s %s%n", "NODE", "STATE", "HOST", "PID", "LAST_SEEN_S",
                        "RUNNING", "QUEUES", "KINDS");
                for (NodeStore.Node n : nodes) {
                    out.printf("%-24s %-8s %-20s %8d %12.1f %8d %-20s %s%n", n.nodeId(), state(n), n.host(), n.pid(),
                            n.secondsSinceSeen(), running.getOrDefault(n.nodeId(), 0L), String.join(",", n.queues()),
                            String.join(",", n.kinds()));
                }
                out.printf("(dead = not seen for TASK_NODE_TIMEOUT_S=%d)%n", cfg.nodeTimeout().toSeconds());
                return Main.OK;
            }
        }
    }

    /** {@code nodes forget ID}: deletes a dead or stopped node's row; a live node is refused. */
    @Command(name = "forget", mixinStandardHelpOptions = true,
            description = "Delete a dead or stopped node's row from dispatcher_nodes (a live node is refused).")
    static final class Forget implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "ID", description = "Node id")
        String nodeId;

        @Override
        public Integer call() {
            DispatcherConfig cfg = Env.config();
            try (Database db = TasksCommand.open("nodes")) {
                NodeStore nodes = new NodeStore(db);
                Optional<NodeStore.Node> found = nodes.find(nodeId, cfg.nodeTimeout());
                if (found.isEmpty()) {
                    spec.commandLine().getErr().printf("pgdispatch: node %s not found%n", nodeId);
                    return Main.FAILURE;
                }
                if (!nodes.forget(nodeId, cfg.nodeTimeout())) {
                    // alive (or it heartbeated between the two statements)
                    NodeStore.Node n = nodes.find(nodeId, cfg.nodeTimeout()).orElse(found.get());
                    spec.commandLine().getErr().printf("pgdispatch: node %s is live (last seen %.1fs ago, within"
                            + " TASK_NODE_TIMEOUT_S=%d; host %s pid %d): stop it first%n", nodeId, n.secondsSinceSeen(),
                            cfg.nodeTimeout().toSeconds(), n.host(), n.pid());
                    return Main.FAILURE;
                }
                long running = new TaskQueries(db).runningByOwner().getOrDefault(nodeId, 0L);
                PrintWriter out = spec.commandLine().getOut();
                out.printf("node %s forgotten (was %s)%n", nodeId, state(found.get()));
                if (running > 0) {
                    out.printf("it still owns %d running task(s): the reaper requeues them when their leases expire"
                            + " (or run: pgdispatch reap)%n", running);
                }
                return Main.OK;
            }
        }
    }
}

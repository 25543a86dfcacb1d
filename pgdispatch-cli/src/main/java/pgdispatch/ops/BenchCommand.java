package pgdispatch.ops;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import pgdispatch.bench.Bench;
import pgdispatch.bench.BenchOptions;
import pgdispatch.config.DispatcherConfig;

/** {@code bench}: pgdispatch's own benchmark, in a scratch database on DATABASE_URL's server. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Benchmark pgdispatch in a scratch database (pgdispatch_bench_<random>, created and dropped) "
                + "on the server of DATABASE_URL.",
                "Prints one line per scenario: scenario=<name> key=value ..., then a summary (or --json)."})
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--scenario", paramLabel = "NAME", split = ",", defaultValue = "all",
            description = "drain|raw|latency|renew|idle|recovery|backlog|limit|all, comma-separated (default all)")
    List<String> scenarios;

    @Option(names = "--tasks", paramLabel = "N", defaultValue = "100000", description = "drain/raw: tasks (default 100000)")
    int tasks;

    @Option(names = "--nodes", paramLabel = "K", split = ",", defaultValue = "1",
            description = "drain/raw: in-process nodes; several (1,2,4,8) measure each in turn (default 1)")
    List<Integer> nodes;

    @Option(names = "--concurrency", paramLabel = "C", defaultValue = "32", description = "workers per node (default 32)")
    int concurrency;

    @Option(names = "--rate", paramLabel = "R", defaultValue = "500", description = "latency: tasks per second (default 500)")
    int rate;

    @Option(names = "--seconds", paramLabel = "T", description = "latency/idle window (default 10 / 30)")
    Integer seconds;

    @Option(names = "--repeat", paramLabel = "n", defaultValue = "1", description = "runs per scenario; median and spread (default 1)")
    int repeat;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "500",
            description = "largest claim and completion batch (raw: both; drain: the runtime's claim) (default 500)")
    int batch;

    @Option(names = "--payload-bytes", paramLabel = "BYTES", defaultValue = "2", description = "payload size (default 2: {})")
    int payloadBytes;

    @Option(names = "--leases", paramLabel = "H", split = ",", defaultValue = "1000,10000",
            description = "renew: held leases per tick (default 1000,10000)")
    List<Integer> leases;

    @Option(names = "--recovery-tasks", paramLabel = "M", defaultValue = "100", description = "recovery: tasks on the halted node (default 100)")
    int recoveryTasks;

    @Option(names = "--backlog", paramLabel = "ROWS", defaultValue = "1000000", description = "backlog: pending rows (default 1000000)")
    int backlog;

    @Option(names = "--json", description = "Print one JSON document instead of lines and summary")
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<String> which = new ArrayList<>();
        for (String s : scenarios) {
            if (s.equals("all")) which.addAll(BenchOptions.ALL);
            else if (!which.contains(s)) which.add(s);
        }
        BenchOptions o = new BenchOptions(which, tasks, nodes, concurrency, rate, seconds, repeat, batch, payloadBytes,
                leases, recoveryTasks, backlog);
        DispatcherConfig cfg = Env.config();
        new Bench(cfg.databaseUrl(), Env.get()).run(o, json, spec.commandLine().getOut());
        return Main.OK;
    }
}

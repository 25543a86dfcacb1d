package pgdispatch.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import pgdispatch.store.ClaimRequest;
import pgdispatch.store.ClaimedTask;
import pgdispatch.store.Database;
import pgdispatch.store.Outcome;
import pgdispatch.store.TaskStore;

/**
 * {@code raw}: the drain done by the runtime's own claim and completion statements
 * ({@link TaskStore#claimDue} then {@link TaskStore#completeIfOwned}) in tight loops, with the same
 * batch size and as many connections as the nodes' claimers and completers use (two per node), no
 * handler, no threads in between: the ceiling the runtime is measured against. Warmed up once per JVM
 * like drain.
 */
final class RawScenario implements Scenario {
    @Override
    public String name() {
        return "raw";
    }

    @Override
    public String headline() {
        return "tasks_per_s";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return Bench.num(f.get("tasks_per_s")) + " tasks/s from the bare claim + complete statements over "
                + f.get("connections") + " connections (batch " + f.get("batch") + ")"
                + (f.containsKey("overhead_ratio") ? "; drain reaches " + Bench.num(f.get("overhead_ratio")) + " of it" : "");
    }

    /** Set once this JVM has run a warm-up batch through the loops (as drain does). */
    private static final AtomicBoolean warm = new AtomicBoolean();

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception {
        if (warm.compareAndSet(false, true)) {
            db.preload(DrainScenario.warmUpTasks(o), "noop", o.payload());
            loops(db, o);
            db.reset();
        }
        db.preload(o.tasks(), "noop", o.payload());
        var before = db.counters();
        int loops = 2 * o.nodes();
        var cpu = ClientCpu.Reading.now();
        long serverCpu = ServerCpu.nanos(db.url().host());
        loops(db, o);
        var cpuAfter = ClientCpu.Reading.now();
        Double serverUs = ServerCpu.perTask(serverCpu, ServerCpu.nanos(db.url().host()), o.tasks());
        var after = db.counters();
        var f = DrainScenario.figures(db, o, before, after, o.nodes());
        f.putAll(cpuAfter.perTask(cpu, o.tasks(), "client_"));
        if (serverUs != null) f.put("server_cpu_us_per_task", serverUs);
        f.put("connections", loops);
        return new Run(f, List.of());
    }

    /** Two loops per node, each on its own connection, until nothing is left to claim. */
    private static void loops(ScratchDatabase db, BenchOptions o) throws Exception {
        int loops = 2 * o.nodes();
        try (Database pool = Database.open(db.url(), loops, "pgdispatch-bench-raw")) {
            TaskStore store = new TaskStore(pool);
            ExecutorService threads = Executors.newFixedThreadPool(loops);
            try {
                List<Future<Long>> done = new ArrayList<>();
                for (int i = 1; i <= loops; i++) {
                    String owner = "raw-" + i;
                    done.add(threads.submit(() -> loop(store, owner, o.batch())));
                }
                for (Future<Long> f : done) f.get();
            } finally {
                threads.shutdownNow();
            }
        }
    }

    private static long loop(TaskStore store, String owner, int batch) {
        ClaimRequest req = new ClaimRequest(owner, List.of("default"), Map.of("noop", Duration.ofMinutes(10)), batch, 3, false);
        long n = 0;
        while (true) {
            List<ClaimedTask> claimed = store.claimDue(req);
            if (claimed.isEmpty()) return n;
            List<Outcome> outcomes = new ArrayList<>(claimed.size());
            for (ClaimedTask t : claimed) outcomes.add(new Outcome.Success(t.id(), t.leaseToken(), null));
            store.completeIfOwned(owner, outcomes);
            n += claimed.size();
        }
    }
}

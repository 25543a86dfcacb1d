package pgdispatch.chaos;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import pgdispatch.store.Mutant;

/** The chaos run's command-line options; {@code --short} is the CI form. */
final class ChaosOptions {
    static final String USAGE = """
            usage: java -cp pgdispatch.jar pgdispatch.chaos.ChaosRun [options]   (normally via scripts/chaos)
              --short            CI form: 3 nodes, 3000 tasks, 75 s of faults
              --seconds N        fault window in seconds (default 180; short 75)
              --tasks N          tasks to enqueue (default 30000; short 3000)
              --nodes N          node processes, at least 3 (default 3)
              --seed N           random seed (default: random; printed)
              --concurrency N    worker slots per node (default 16)
              --max-requeue N    TASK_MAX_REQUEUE of the nodes (default 3)
              --drain N          seconds to wait for the queue to drain after healing (default 120; short 60)
              --timeout N        hard limit for the whole run in seconds (default: seconds + drain + 80)
              --min-effects N    fewest take-overs, lease refusals, requeues and zombie refusals a run must
                                 show, each, or it fails as unexercised (default 1; 0 = no minimum)
              --mutant NAME      nodes run with a seeded bug (-Dpgdispatch.mutant=NAME): the run must fail;
                                 one of %s
              --pg-restart       run on a private PostgreSQL cluster (pg_createcluster) and restart it too
              --keep             keep the database (and private cluster) for inspection
              --admin-url URL    server to create the database on (default jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres)
              --jar PATH         the pgdispatch jar the nodes run (default: this one)
              --run-id ID        names the database pgd_chaos_ID (default: random)
              --run-dir DIR      node logs and pid file (default target/chaos/ID)
            """.formatted(Mutant.names());

    boolean help;
    boolean shortRun;
    int seconds = 180;
    int tasks = 30_000;
    int nodes = 3;
    long seed = new Random().nextLong() & 0xffffffffL;
    int concurrency = 16;
    int maxRequeue = 3;
    int drainS = 120;
    int timeoutS = -1;
    int minEffects = 1;
    Mutant mutant = Mutant.NONE;
    boolean pgRestart;
    boolean keep;
    String adminUrl = "jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres";
    String jar;
    String runId = UUID.randomUUID().toString().replace("-", "").substring(0, 8);
    String runDir;

    static ChaosOptions parse(String[] args) {
        ChaosOptions o = new ChaosOptions();
        Map<String, String> given = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "-h", "--help" -> o.help = true;
                case "--short" -> o.shortRun = true;
                case "--pg-restart" -> o.pgRestart = true;
                case "--keep" -> o.keep = true;
                case "--seconds", "--tasks", "--nodes", "--seed", "--concurrency", "--max-requeue", "--drain", "--timeout",
                     "--admin-url", "--jar", "--run-id", "--run-dir", "--min-effects", "--mutant" -> {
                    if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
                    given.put(a, args[++i]);
                }
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (o.shortRun) {
            o.seconds = 75;
            o.tasks = 3000;
            o.drainS = 60;
        }
        o.seconds = num(given, "--seconds", o.seconds, 5, 86_400);
        o.tasks = num(given, "--tasks", o.tasks, 1, 10_000_000);
        o.nodes = num(given, "--nodes", o.nodes, 3, 32);
        o.concurrency = num(given, "--concurrency", o.concurrency, 1, 1000);
        o.maxRequeue = num(given, "--max-requeue", o.maxRequeue, 0, 1000);
        o.drainS = num(given, "--drain", o.drainS, 10, 86_400);
        o.minEffects = num(given, "--min-effects", o.minEffects, 0, 1_000_000);
        try {
            o.mutant = Mutant.parse(given.get("--mutant"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--mutant=" + given.get("--mutant") + " must be one of " + Mutant.names());
        }
        o.timeoutS = num(given, "--timeout", o.seconds + o.drainS + 80, 60, 7 * 86_400);
        if (given.containsKey("--seed")) {
            try {
                o.seed = Long.parseLong(given.get("--seed"));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seed=" + given.get("--seed") + " must be a whole number");
            }
        }
        o.adminUrl = given.getOrDefault("--admin-url", o.adminUrl);
        o.jar = given.get("--jar");
        o.runId = given.getOrDefault("--run-id", o.runId);
        if (!o.runId.matches("[a-z0-9_]{1,30}")) {
            throw new IllegalArgumentException("--run-id=" + o.runId + " must be 1-30 of a-z 0-9 _");
        }
        o.runDir = given.get("--run-dir");
        return o;
    }

    private static int num(Map<String, String> given, String name, int def, int min, int max) {
        String raw = given.get(name);
        if (raw == null) return def;
        try {
            int v = Integer.parseInt(raw);
            if (v < min || v > max) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + "=" + raw + " must be a whole number from " + min + " to " + max);
        }
    }
}

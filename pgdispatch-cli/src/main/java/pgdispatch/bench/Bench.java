package pgdispatch.bench;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DatabaseUrl;

/**
 * pgdispatch's own benchmark: runs the chosen scenarios (each {@code repeat} times) in one scratch
 * database on the server of {@code DATABASE_URL}, prints one {@code scenario=<name> key=value ...} line
 * per scenario (the median of the runs, with the headline figure's min and max) and a human summary, or
 * one JSON document.
 */
public final class Bench {
    /** The per-transition INFO logger: 2 lines per task would be measured instead of the runtime. */
    static final String TRANSITIONS_LOGGER = "pgdispatch.transitions";

    private static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();
    /** The scenarios measured once per {@code --nodes} count. */
    private static final List<String> SWEPT = List.of("drain", "raw");

    static {
        for (Scenario s : List.of(new DrainScenario(), new RawScenario(), new LatencyScenario(), new RenewScenario(),
                new IdleScenario(), new RecoveryScenario(), new BacklogScenario(), new LimitScenario())) {
            SCENARIOS.put(s.name(), s);
        }
    }

    private final DatabaseUrl server;
    private final Map<String, String> env;

    /** {@code env}: the environment the nodes' configuration starts from (the scratch database replaces its URL). */
    public Bench(DatabaseUrl server, Map<String, String> env) {
        this.server = server;
        this.env = Map.copyOf(env);
    }

    /** One scenario's result: its name, the aggregated figures, and notes (plans) for people. */
    public record Result(String scenario, Map<String, Object> figures, List<Map<String, Object>> runs, List<String> notes) {
        /** {@code scenario=<name> key=value ...}: the stable line scripts parse. */
        public String line() {
            StringBuilder sb = new StringBuilder("scenario=").append(scenario);
            figures.forEach((k, v) -> sb.append(' ').append(k).append('=').append(format(v)));
            return sb.toString();
        }
    }

    /** Runs {@code o}'s scenarios; prints lines and a summary to {@code out}, or JSON when {@code json}. */
    public List<Result> run(BenchOptions o, boolean json, PrintWriter out) throws Exception {
        Logger transitions = (Logger) LoggerFactory.getLogger(TRANSITIONS_LOGGER);
        Level was = transitions.getLevel();
        transitions.setLevel(Level.WARN);
        List<Result> results = new ArrayList<>();
        String serverInfo;
        try (ScratchDatabase db = ScratchDatabase.create(server)) {
            serverInfo = db.describeServer();
            for (String name : o.scenarios()) {
                Scenario s = SCENARIOS.get(name);
                // drain and raw once per node count (--nodes 1,2,4,8): how throughput and the server's cost
                // per task move as nodes are added against one PostgreSQL
                List<Integer> counts = SWEPT.contains(name) ? o.nodeCounts() : List.of(o.nodes());
                for (int n : counts) {
                    List<Map<String, Object>> runs = new ArrayList<>();
                    List<String> notes = new ArrayList<>();
                    for (int i = 0; i < o.repeat(); i++) {
                        db.reset();
                        Scenario.Run r = s.run(db, o.withNodes(n), env);
                        runs.add(r.figures());
                        if (i == 0) notes.addAll(r.notes());
                    }
                    Result res = new Result(name, aggregate(runs, s.headline()), runs, notes);
                    relate(res, results);
                    results.add(res);
                    if (!json) {
                        out.println(res.line());
                        out.flush();
                    }
                }
            }
        } finally {
            transitions.setLevel(was);
        }
        if (json) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("options", o);
            doc.put("results", results);
            out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(doc));
        } else {
            summary(results, serverInfo, out);
        }
        out.flush();
        return results;
    }

    /** raw after drain: the runtime's share of its own SQL's ceiling. */
    private static void relate(Result res, List<Result> earlier) {
        if (!res.scenario().equals("raw")) return;
        for (Result e : earlier) {
            if (e.scenario().equals("drain") && e.figures().get("nodes").equals(res.figures().get("nodes"))) {
                double drain = ((Number) e.figures().get("tasks_per_s")).doubleValue();
                double raw = ((Number) res.figures().get("tasks_per_s")).doubleValue();
                res.figures().put("overhead_ratio", drain / raw);
            }
        }
    }

    /** The median of every numeric figure; for the headline also min and max when repeated. */
    static Map<String, Object> aggregate(List<Map<String, Object>> runs, String headline) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (runs.size() > 1) out.put("runs", runs.size());
        for (String key : runs.get(0).keySet()) {
            Object first = runs.get(0).get(key);
            if (!(first instanceof Number)) {
                out.put(key, first);
                continue;
            }
            // a figure only some runs have (the warm-up's, measured before the first): the median of those
            double[] v = runs.stream().filter(r -> r.get(key) instanceof Number)
                    .mapToDouble(r -> ((Number) r.get(key)).doubleValue()).sorted().toArray();
            double median = v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
            boolean integral = runs.stream().allMatch(r -> r.get(key) == null || r.get(key) instanceof Integer || r.get(key) instanceof Long);
            out.put(key, integral && median == Math.rint(median) ? (Object) (long) median : (Object) median);
            if (key.equals(headline) && v.length > 1) {
                out.put(key + "_min", v[0]);
                out.put(key + "_max", v[v.length - 1]);
                out.put(key + "_spread_pct", 100 * (v[v.length - 1] - v[0]) / median);
            }
        }
        return out;
    }

    static String format(Object v) {
        if (v instanceof Double d) {
            double a = Math.abs(d);
            if (Double.isNaN(d)) return "NaN";
            if (a >= 100) return String.format(Locale.ROOT, "%.0f", d);
            if (a >= 1) return String.format(Locale.ROOT, "%.2f", d);
            if (a == 0) return "0";
            return String.format(Locale.ROOT, "%.4f", d);
        }
        return String.valueOf(v).replace(' ', '_');
    }

    private static void summary(List<Result> results, String serverInfo, PrintWriter out) {
        out.println();
        out.println("summary (" + serverInfo + "):");
        for (Result r : results) {
            Scenario s = SCENARIOS.get(r.scenario());
            out.println("  " + r.scenario() + ": " + s.summary(r.figures()));
            for (String n : r.notes()) {
                for (String line : n.split("\n")) out.println("    " + line);
            }
        }
    }

    static String num(Object v) {
        return format(v);
    }

    static double d(Map<String, Object> f, String k) {
        Object v = f.get(k);
        return v instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    static List<String> lines(String... s) {
        return Arrays.asList(s);
    }
}

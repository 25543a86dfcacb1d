package pgdispatch.bench;

import java.util.List;
import java.util.Map;

/** One benchmark scenario: one run against a scratch database, returning its figures. */
interface Scenario {
    String name();

    /** The figure the scenario is judged by (repeats report its min and max too). */
    String headline();

    /** One run; the database is empty and migrated when it starts; {@code env} is the nodes' base configuration. */
    Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) throws Exception;

    /** One sentence for people from the aggregated figures. */
    String summary(Map<String, Object> f);

    /**
     * The figures of one run as ordered {@code key → value} (numbers, or text without spaces), and
     * longer notes for the human summary (EXPLAIN plans).
     */
    record Run(Map<String, Object> figures, List<String> notes) {}
}

package pgdispatch.store;

import java.time.Duration;
import java.util.Map;

/**
 * How the renewal judges held attempts stuck (docs/TASK_LEASES.md, "Stuck"): per kind a {@link Rule};
 * {@code stale} bounds the silence of handlers without a known cadence; {@code maxRequeue} is the
 * requeue budget of the requeue policy. A kind without a rule is never judged.
 */
public record StuckRules(Map<String, Rule> byKind, Duration stale, int maxRequeue) {
    /** No kind is judged. */
    public static final StuckRules NONE = new StuckRules(Map.of(), Duration.ofDays(365), 0);

    /**
     * One kind's rule: stuck after {@code factor} × its cadence (at least {@code floor}); a handler that
     * never reported is judged (by {@code stale}) only when {@code judgeSilent}; a stuck attempt is
     * requeued when {@code requeue}, else failed (retried after its back-off).
     */
    public record Rule(double factor, Duration floor, boolean judgeSilent, boolean requeue) {
        public Rule {
            if (!(factor >= 1)) throw new IllegalArgumentException("StuckRules.Rule.factor must be >= 1, got " + factor);
            if (floor.isNegative()) throw new IllegalArgumentException("StuckRules.Rule.floor must be >= 0, got " + floor);
        }
    }

    public StuckRules {
        byKind = Map.copyOf(byKind);
        if (stale.isZero() || stale.isNegative()) throw new IllegalArgumentException("StuckRules.stale must be > 0, got " + stale);
        if (maxRequeue < 0) throw new IllegalArgumentException("StuckRules.maxRequeue must be >= 0, got " + maxRequeue);
    }

    /** The statement's {@code :rule_*}, {@code :stale_ms} and {@code :max_requeue} parameters. */
    void bind(Map<String, Object> v) {
        String[] kinds = byKind.keySet().toArray(String[]::new);
        Double[] factor = new Double[kinds.length];
        Long[] floorMs = new Long[kinds.length];
        Boolean[] silent = new Boolean[kinds.length];
        Boolean[] requeue = new Boolean[kinds.length];
        for (int i = 0; i < kinds.length; i++) {
            Rule r = byKind.get(kinds[i]);
            factor[i] = r.factor();
            floorMs[i] = r.floor().toMillis();
            silent[i] = r.judgeSilent();
            requeue[i] = r.requeue();
        }
        v.put("rule_kinds", kinds);
        v.put("rule_factor", factor);
        v.put("rule_floor_ms", floorMs);
        v.put("rule_judge_silent", silent);
        v.put("rule_requeue", requeue);
        v.put("stale_ms", stale.toMillis());
        v.put("max_requeue", maxRequeue);
    }
}

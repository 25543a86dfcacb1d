package pgdispatch.store;

import java.util.Locale;

/**
 * Seeded bugs for the chaos checker's mutation check (docs/RELIABILITY.md, {@code scripts/mutants}):
 * each one breaks a rule the chaos run claims to check, so a run with it must fail. Chosen by the
 * system property {@code pgdispatch.mutant} (a name below, lower case) when the class loads; off by
 * default. Costs nothing when off: the store picks its statement texts once at class load, and the one
 * runtime check compares a static final field, which the JIT folds away.
 */
public enum Mutant {
    /** The real code. */
    NONE,
    /** The completion statement fences by owner only: a stale lease token's success is accepted. */
    COMPLETION_IGNORES_TOKEN,
    /** The handler never runs; success (result null) is reported all the same. */
    HANDLER_SKIPPED,
    /** Some finished tasks (id divisible by 10) are deleted with their events and a look-alike inserted. */
    SUBSTITUTE_FINISHED,
    /** A claim that takes over an expired lease does not count the requeue. */
    TAKEOVER_NO_REQUEUE,
    /**
     * The retry budget is computed as Java {@code int} {@code max_attempts + Integer.MAX_VALUE - attempts}
     * (an "unlimited" allowance), which wraps: tasks under budget fail for good, tasks over it retry.
     */
    BUDGET_INT_OVERFLOW;

    /** The system property that selects a mutant. */
    public static final String PROPERTY = "pgdispatch.mutant";

    /** The mutant this JVM runs with. */
    public static final Mutant ACTIVE = parse(System.getProperty(PROPERTY));

    /** {@code null} or blank is {@link #NONE}; an unknown name is refused, naming the property and the choices. */
    public static Mutant parse(String name) {
        if (name == null || name.isBlank()) return NONE;
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(PROPERTY + "=" + name + " must be one of " + names());
        }
    }

    /** Every name, lower case, the real code first. */
    public static String names() {
        StringBuilder b = new StringBuilder();
        for (Mutant m : values()) b.append(b.isEmpty() ? "" : ", ").append(m.label());
        return b.toString();
    }

    /** The name as the property and the chaos summary line spell it. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** {@code text} with {@code from} replaced when this mutant is active; fails loudly if {@code from} is gone. */
    static String seed(Mutant m, String text, String from, String to) {
        if (ACTIVE != m) return text;
        if (!text.contains(from)) throw new IllegalStateException("mutant " + m.label() + ": '" + from + "' not in its statement");
        return text.replace(from, to);
    }
}

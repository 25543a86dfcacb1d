package pgdispatch.ops;

/**
 * Checks option values the commands take as text, so a bad one is reported as
 * {@code --flag=value must be ...} (exit 2) rather than with picocli's type-conversion wording.
 */
final class Flags {
    private Flags() {}

    /** {@code raw} as a whole number from {@code min} to {@code max}, or an {@link IllegalArgumentException} naming the flag. */
    static int intIn(String flag, String raw, int min, int max) {
        long v = parse(flag, raw, min, max);
        return (int) v;
    }

    static long longIn(String flag, String raw, long min, long max) {
        return parse(flag, raw, min, max);
    }

    /** A task id: a positive whole number. */
    static long taskId(String raw) {
        return parse("ID", raw, 1, Long.MAX_VALUE);
    }

    private static long parse(String flag, String raw, long min, long max) {
        String rule = min == 1 && max == Long.MAX_VALUE ? "a positive whole number"
                : min == 1 ? "a positive whole number (at most " + max + ")"
                : "a whole number from " + min + " to " + max;
        long v;
        try {
            v = Long.parseLong(raw.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + "=" + raw + " must be " + rule);
        }
        if (v < min || v > max) throw new IllegalArgumentException(flag + "=" + raw + " must be " + rule);
        return v;
    }
}

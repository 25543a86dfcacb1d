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

    private static final java.util.regex.Pattern SHORT_DURATION = java.util.regex.Pattern.compile("([0-9]{1,9})([smhd])");

    /** A duration as {@code 90s}, {@code 15m}, {@code 2h}, {@code 7d} or ISO-8601 ({@code PT15M}); not negative. */
    static java.time.Duration duration(String flag, String raw) {
        String v = raw.strip();
        java.util.regex.Matcher m = SHORT_DURATION.matcher(v);
        java.time.Duration d = null;
        if (m.matches()) {
            long n = Long.parseLong(m.group(1));
            d = switch (m.group(2)) {
                case "s" -> java.time.Duration.ofSeconds(n);
                case "m" -> java.time.Duration.ofMinutes(n);
                case "h" -> java.time.Duration.ofHours(n);
                default -> java.time.Duration.ofDays(n);
            };
        } else {
            try {
                d = java.time.Duration.parse(v);
            } catch (java.time.format.DateTimeParseException e) {
                // reported below with the accepted forms
            }
        }
        if (d == null || d.isNegative()) {
            throw new IllegalArgumentException(flag + "=" + raw + " must be a duration such as 90s, 15m, 2h, 7d or PT15M");
        }
        return d;
    }

    static long parse(String flag, String raw, long min, long max) {
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

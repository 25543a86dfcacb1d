package pgdispatch.store;

/**
 * Makes handler text storable: PostgreSQL refuses a NUL character in {@code text} (22021: invalid byte
 * sequence) and the escape {@code \u0000} in {@code jsonb} (22P05), and refuses a JSON escape of a lone
 * surrogate (22P02); pgjdbc itself turns a raw lone surrogate into {@code ?}. One such value used to
 * make its whole completion batch fail again and again (issue 11). Every piece of handler text the
 * store writes (results, error messages, heartbeat messages, checkpoints) passes through here.
 *
 * <p>What is changed, visibly rather than dropped: a NUL becomes the six characters {@code \u0000}
 * (in JSON: the string holds a backslash followed by {@code u0000}); a lone surrogate, raw or escaped,
 * becomes U+FFFD. Text without either is returned as it is (one scan, no copy).
 */
public final class StorableText {
    static final char REPLACEMENT = '\uFFFD';

    private StorableText() {}

    /** Plain text (an error or heartbeat message); null stays null. */
    public static String text(String s) {
        if (s == null || cleanText(s)) return s;
        StringBuilder b = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == 0) {
                b.append("\\u0000");
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                b.append(c).append(s.charAt(++i));
            } else if (Character.isSurrogate(c)) {
                b.append(REPLACEMENT);
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static boolean cleanText(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == 0) return false;
            if (Character.isSurrogate(c)) {
                if (!Character.isHighSurrogate(c) || i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) {
                    return false;
                }
                i++;
            }
        }
        return true;
    }

    /**
     * A JSON text (a result or checkpoint): the escape {@code \u0000} becomes an escaped backslash
     * followed by {@code u0000}, an escaped lone surrogate becomes {@code \ufffd}, a raw NUL or lone
     * surrogate is handled as in {@link #text}. Anything else PostgreSQL refuses is left for the
     * completer's refusal path. Null stays null.
     */
    public static String json(String json) {
        if (json == null || cleanJson(json)) return json;
        StringBuilder b = new StringBuilder(json.length() + 16);
        int i = 0;
        while (i < json.length()) {
            char c = json.charAt(i);
            if (c == '\\' && i + 1 < json.length()) {
                int u = unicodeEscape(json, i);
                if (u == 0) {
                    b.append("\\\\u0000");
                    i += 6;
                } else if (u >= 0 && Character.isHighSurrogate((char) u) && Character.isLowSurrogate((char) unicodeEscape(json, i + 6))) {
                    b.append(json, i, i + 12);
                    i += 12;
                } else if (u >= 0 && Character.isSurrogate((char) u)) {
                    b.append("\\ufffd");
                    i += 6;
                } else {
                    b.append(c).append(json.charAt(i + 1)); // any other escape, kept whole (an escaped backslash included)
                    i += 2;
                }
            } else if (c == 0) {
                b.append("\\\\u0000");
                i++;
            } else if (Character.isHighSurrogate(c) && i + 1 < json.length() && Character.isLowSurrogate(json.charAt(i + 1))) {
                b.append(c).append(json.charAt(i + 1));
                i += 2;
            } else if (Character.isSurrogate(c)) {
                b.append(REPLACEMENT);
                i++;
            } else {
                b.append(c);
                i++;
            }
        }
        return b.toString();
    }

    private static boolean cleanJson(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\') {
                int u = unicodeEscape(s, i);
                if (u == 0 || u >= 0 && Character.isSurrogate((char) u)) return false;
                i++; // skip the escaped character (a backslash too)
            } else if (c == 0) {
                return false;
            } else if (Character.isSurrogate(c)) {
                if (!Character.isHighSurrogate(c) || i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) {
                    return false;
                }
                i++;
            }
        }
        return true;
    }

    /** The code unit of a {@code \\uXXXX} escape starting at {@code i}, or -1 when there is none. */
    private static int unicodeEscape(String s, int i) {
        if (i + 5 >= s.length() || s.charAt(i) != '\\' || s.charAt(i + 1) != 'u') return -1;
        int v = 0;
        for (int k = i + 2; k < i + 6; k++) {
            int d = Character.digit(s.charAt(k), 16);
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        return v;
    }

    /** Whether {@code s} takes more than {@code limit} bytes in UTF-8; counts only as far as it must. */
    public static boolean exceedsUtf8(String s, long limit) {
        if (s == null || (long) s.length() * 3 <= limit) return false; // at most 3 bytes per char (a pair: 4 for 2)
        return utf8Length(s, limit) > limit;
    }

    /** UTF-8 length of {@code s} (exact). */
    public static long utf8Length(String s) {
        return utf8Length(s, Long.MAX_VALUE);
    }

    private static long utf8Length(String s, long stopAfter) {
        long n = 0;
        for (int i = 0; i < s.length() && n <= stopAfter; i++) {
            char c = s.charAt(i);
            if (c < 0x80) n++;
            else if (c < 0x800) n += 2;
            else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else n += 3;
        }
        return n;
    }
}

package pgdispatch.store;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PostgreSQL statement written with {@code :name} parameters, parsed once. JDBC only knows
 * positional {@code ?}; the long CTE statements of {@link TaskStore} bind a dozen values, some twice,
 * and names keep them readable (STYLE: no {@code setX(index++)}). {@code ::casts} are left alone.
 */
final class NamedSql {
    private static final Pattern PARAM = Pattern.compile(":([a-z][a-z0-9_]*)");
    private static final Pattern DOLLAR_TAG = Pattern.compile("\\$([A-Za-z_][A-Za-z0-9_]*)?\\$");

    private final String jdbcSql;
    private final List<String> order;

    private NamedSql(String jdbcSql, List<String> order) {
        this.jdbcSql = jdbcSql;
        this.order = List.copyOf(order);
    }

    /**
     * Parses {@code sql}: a {@code :name} outside comments ({@code --} to the end of the line, {@code /* *}{@code /}),
     * quoted text ({@code '...'}, {@code "..."}, {@code $tag$...$tag$}) and casts ({@code ::}) is a parameter.
     */
    static NamedSql of(String sql) {
        List<String> order = new ArrayList<>();
        StringBuilder sb = new StringBuilder(sql.length());
        int i = 0;
        int n = sql.length();
        while (i < n) {
            char c = sql.charAt(i);
            int end;
            if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
                end = sql.indexOf('\n', i);
                end = end < 0 ? n : end;
            } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
                end = sql.indexOf("*/", i + 2);
                end = end < 0 ? n : end + 2;
            } else if (c == '\'' || c == '"') {
                end = closingQuote(sql, i, c);
            } else if (c == '$' && (end = dollarQuoteEnd(sql, i)) > 0) {
                // end set by the condition
            } else if (c == ':' && i + 1 < n && sql.charAt(i + 1) == ':') {
                end = i + 2;
            } else if (c == ':') {
                Matcher m = PARAM.matcher(sql).region(i, n);
                if (m.lookingAt()) {
                    order.add(m.group(1));
                    sb.append('?');
                    i = m.end();
                    continue;
                }
                end = i + 1;
            } else {
                end = i + 1;
            }
            sb.append(sql, i, end);
            i = end;
        }
        return new NamedSql(sb.toString(), order);
    }

    /** Just past the quote that closes the one at {@code start} (a doubled quote is part of the text). */
    private static int closingQuote(String sql, int start, char q) {
        int i = start + 1;
        while (i < sql.length()) {
            if (sql.charAt(i) == q) {
                if (i + 1 < sql.length() && sql.charAt(i + 1) == q) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i++;
        }
        return sql.length();
    }

    /** Just past a dollar-quoted string starting at {@code start} ({@code $$...$$}, {@code $fn$...$fn$}), or -1 if none starts there. */
    private static int dollarQuoteEnd(String sql, int start) {
        Matcher tag = DOLLAR_TAG.matcher(sql).region(start, sql.length());
        if (!tag.lookingAt()) return -1;
        int close = sql.indexOf(tag.group(), tag.end());
        return close < 0 ? sql.length() : close + tag.group().length();
    }

    String sql() {
        return jdbcSql;
    }

    /** The same statement behind {@code prefix} (an EXPLAIN), with the same parameters. */
    NamedSql prefixed(String prefix) {
        return new NamedSql(prefix + jdbcSql, order);
    }

    /** Prepares the statement on {@code c} and binds {@code values} by name; every name must be given. */
    PreparedStatement prepare(Connection c, Map<String, ?> values) throws SQLException {
        PreparedStatement ps = c.prepareStatement(jdbcSql);
        try {
            for (int i = 0; i < order.size(); i++) {
                String name = order.get(i);
                if (!values.containsKey(name)) {
                    throw new IllegalArgumentException("no value for :" + name);
                }
                bind(c, ps, i + 1, values.get(name));
            }
            return ps;
        } catch (SQLException | RuntimeException e) {
            ps.close();
            throw e;
        }
    }

    private static void bind(Connection c, PreparedStatement ps, int index, Object v) throws SQLException {
        if (v == null) {
            ps.setNull(index, Types.NULL);
        } else if (v instanceof Long[] a) {
            ps.setArray(index, c.createArrayOf("bigint", a));
        } else if (v instanceof String[] a) {
            ps.setArray(index, c.createArrayOf("text", a));
        } else if (v instanceof Boolean[] a) {
            ps.setArray(index, c.createArrayOf("boolean", a));
        } else if (v instanceof Integer[] a) {
            ps.setArray(index, c.createArrayOf("integer", a));
        } else {
            ps.setObject(index, v);
        }
    }
}

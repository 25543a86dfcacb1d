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
    private static final Pattern PARAM = Pattern.compile("(?<!:):([a-z][a-z0-9_]*)");

    private final String jdbcSql;
    private final List<String> order;

    private NamedSql(String jdbcSql, List<String> order) {
        this.jdbcSql = jdbcSql;
        this.order = List.copyOf(order);
    }

    static NamedSql of(String sql) {
        Matcher m = PARAM.matcher(sql);
        List<String> order = new ArrayList<>();
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            order.add(m.group(1));
            m.appendReplacement(sb, "?");
        }
        m.appendTail(sb);
        return new NamedSql(sb.toString(), order);
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

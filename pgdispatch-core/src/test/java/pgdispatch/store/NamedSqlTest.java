package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/** {@code :name} parameters are found where PostgreSQL would see them, not in comments, quoted text or casts. */
class NamedSqlTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @Test
    void commentsQuotedTextAndCastsHoldNoParameters() throws Exception {
        NamedSql sql = NamedSql.of("""
                -- the node's :owner is not a parameter here, nor is 'this' one
                /* a block comment's :id and its apostrophe ' are text */
                SELECT :a::bigint + 1 AS a, ':b is text' AS b, $$ :c inside a dollar quote $$ AS c,
                       $fn$ it's :d $fn$ AS d, "x:y".v AS e, :a::text || :b_2 AS f
                  FROM (SELECT 1 AS v) "x:y"
                """);
        assertThat(sql.sql()).doesNotContain(":a").contains("-- the node's :owner", "':b is text'", "$$ :c inside");
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = sql.prepare(c, Map.of("a", 41L, "b_2", "!"));
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            assertThat(rs.getLong("a")).isEqualTo(42);
            assertThat(rs.getString("b")).isEqualTo(":b is text");
            assertThat(rs.getString("c")).isEqualTo(" :c inside a dollar quote ");
            assertThat(rs.getString("d")).isEqualTo(" it's :d ");
            assertThat(rs.getInt("e")).isEqualTo(1);
            assertThat(rs.getString("f")).isEqualTo("41!");
        }
    }

    @Test
    void aDoubledQuoteStaysInsideItsText() throws Exception {
        NamedSql sql = NamedSql.of("SELECT 'it''s :not' AS t, :yes AS y");
        try (Connection c = db.database().dataSource().getConnection();
             PreparedStatement ps = sql.prepare(c, Map.of("yes", "y"));
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            assertThat(rs.getString("t")).isEqualTo("it's :not");
            assertThat(rs.getString("y")).isEqualTo("y");
        }
    }
}

package pgdispatch.testing;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The harness itself: one migrated database per top-level class, shared by its @Nested classes. */
class TestDatabaseTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static String outerDatabase;

    @BeforeAll
    static void rememberTheDatabase() {
        outerDatabase = db.url().database();
    }

    @Test
    void connectionsRunInANonUtcTimeZone() {
        assertThat(db.rows("SHOW TimeZone").get(0).get("TimeZone")).isEqualTo("America/Los_Angeles");
    }

    @Test
    void databaseIsMigrated() {
        assertThat(db.count("pgdispatch_schema_history WHERE success")).isPositive();
    }

    /** Nested classes inherit the extension; before the fix each one made (and leaked) another database. */
    @Nested
    class Nested1 {
        @Test
        void sharesTheEnclosingClassDatabase() {
            assertThat(db.url().database()).isEqualTo(outerDatabase);
        }
    }

    @Nested
    class Nested2 {
        @Test
        void stillSharesItAfterAnotherNestedClassFinished() {
            assertThat(db.url().database()).isEqualTo(outerDatabase);
            assertThat(db.count("pg_database WHERE datname = '" + outerDatabase + "'")).isOne();
        }
    }
}

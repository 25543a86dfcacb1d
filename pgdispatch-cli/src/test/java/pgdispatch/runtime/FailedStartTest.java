package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.ops.Env;
import pgdispatch.ops.Main;
import pgdispatch.store.Database;
import pgdispatch.testing.TestDatabase;

/**
 * Regression (found by scripts/chaos): a node whose start failed halfway, here because the database is
 * not migrated, then crashed in {@code halt()} on the parts that never started, so {@code pgdispatch
 * run} printed "Cannot invoke ClaimLoop.stop() because claimLoop is null" instead of the real cause,
 * and an embedding application leaked the node's connection pool.
 */
class FailedStartTest {
    @RegisterExtension
    static final TestDatabase db = TestDatabase.empty();

    @AfterEach
    void restoreEnv() {
        Env.override(null);
    }

    @Test
    void startOnAnUnmigratedDatabaseFailsWithTheSchemaErrorAndClosesItsPool() {
        Dispatcher d = Dispatcher.builder(db.config()).build();

        assertThatThrownBy(d::start)
                .isInstanceOf(Database.SchemaMismatchException.class)
                .hasMessageContaining("run `pgdispatch migrate` first");

        assertThat(d.database().pool().isClosed()).isTrue();
        assertThat(d.registered()).isFalse();
        assertThatCode(d::halt).doesNotThrowAnyException();
        assertThatCode(d::stop).doesNotThrowAnyException();
    }

    @Test
    void runCommandReportsTheSchemaErrorNotAFollowUpNullPointer() {
        var u = db.url();
        Env.override(Map.of("DATABASE_URL", "jdbc:postgresql://" + u.host() + ":" + u.port() + "/" + u.database()
                + "?user=" + u.user(), "PGDISPATCH_HTTP_PORT", "off", "DISPATCHER_NODE_ID", "failed-start"));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();

        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), "run");

        assertThat(code).isEqualTo(Main.FAILURE);
        assertThat(err.toString())
                .contains("is at schema version none but this pgdispatch needs")
                .contains("run `pgdispatch migrate` first")
                .doesNotContain("NullPointer").doesNotContain("Cannot invoke");
    }
}

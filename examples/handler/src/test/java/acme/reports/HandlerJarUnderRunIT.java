package acme.reports;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;
import pgdispatch.testing.PgServer;

/**
 * The packaged example jar under the service's own runnable jar, as docs/HANDLERS.md tells a user to run
 * it: {@code java -jar pgdispatch.jar run --handlers report.jar} with the demo kinds off, against the
 * real PostgreSQL. The node's output is printed (the tail in the closing note comes from here).
 */
class HandlerJarUnderRunIT {
    private final String name = "pgd_t_example_handler_" + Long.toHexString(System.nanoTime());
    private Process node;

    @AfterEach
    void cleanUp() throws Exception {
        if (node != null && node.isAlive()) {
            node.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        PgServer.get().drop(name);
    }

    private static String databaseUrl(DatabaseUrl url) {
        return url.jdbcUrl() + (url.jdbcUrl().contains("?") ? "&" : "?") + "user=" + url.user()
                + (url.password() == null ? "" : "&password=" + url.password());
    }

    private ProcessBuilder pgdispatch(DatabaseUrl url, Path log, String... args) {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new java.util.ArrayList<>(List.of(java, "-Xmx256m", "-jar", System.getProperty("pgdispatch.jar")));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        Map<String, String> env = pb.environment();
        env.put("DATABASE_URL", databaseUrl(url));
        env.put("DISPATCHER_NODE_ID", "reports-1");
        env.put("PGDISPATCH_BUILTIN_HANDLERS", "false");
        env.put("PGDISPATCH_HTTP_PORT", "off");
        env.put("TASK_POLL_MS", "200");
        return pb;
    }

    @Test
    void theReportHandlerJarRunsUnderRunWithHandlers() throws Exception {
        DatabaseUrl url = PgServer.get().createEmpty(name);
        Path jar = Path.of(System.getProperty("example.handler.jar"));
        Path log = Files.createTempFile("pgdispatch-run-handlers", ".log");

        Process migrate = pgdispatch(url, log, "migrate").start();
        assertThat(migrate.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(migrate.exitValue()).as(Files.readString(log)).isZero();

        Path runLog = Files.createTempFile("pgdispatch-run-handlers", ".log");
        node = pgdispatch(url, runLog, "run", "--handlers", jar.toString()).start();
        long id;
        try (Database db = Database.open(url, 2, "example-producer")) {
            id = TaskClient.of(db.dataSource()).enqueue("report.monthly", new MonthlyReportHandler.ReportRequest("ACME", 12));
            await().atMost(90, TimeUnit.SECONDS).until(() -> "succeeded".equals(query(db, "SELECT status FROM tasks WHERE id = " + id)));
            assertThat(query(db, "SELECT result::text FROM tasks WHERE id = " + id))
                    .isEqualTo("{\"total\": 14502, \"months\": 12, \"customer\": \"ACME\", \"resumedFromCheckpoint\": false}");
            // the last heartbeat's checkpoint, which a later attempt would resume from
            assertThat(query(db, "SELECT (progress->'checkpoint')::text || ' ' || (progress->>'message') FROM tasks WHERE id = " + id))
                    .isEqualTo("{\"month\": 12, \"total\": 14502} month 12 of 12");
        }

        node.destroy(); // SIGTERM: the node drains and marks itself stopped
        assertThat(node.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String out = Files.readString(runLog);
        System.out.println("---- java -jar pgdispatch.jar run --handlers " + jar.getFileName() + " (tail) ----");
        out.lines().skip(Math.max(0, out.lines().count() - 12)).forEach(System.out::println);
        assertThat(out).contains("loaded 1 handler(s) from 1 jar(s): {report.monthly=acme.reports.MonthlyReportHandler ("
                + jar.getFileName() + ")}");
        assertThat(out).contains("kinds=[report.monthly]");
        assertThat(out).doesNotContain("echo");
    }

    private static String query(Database db, String sql) throws Exception {
        try (var c = db.dataSource().getConnection(); var st = c.createStatement(); var rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}

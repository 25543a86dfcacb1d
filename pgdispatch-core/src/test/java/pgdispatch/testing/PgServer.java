package pgdispatch.testing;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.UUID;
import org.flywaydb.core.Flyway;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;

/**
 * The PostgreSQL server the suite runs against, chosen once per JVM: {@code PGDISPATCH_TEST_JDBC_URL}
 * when set, else Testcontainers when a Docker engine answers, else the local server at
 * 127.0.0.1:5432. Holds a template database migrated by the real Flyway migrations, from which each
 * test class clones its own database.
 */
public final class PgServer {
    public static final String ENV = "PGDISPATCH_TEST_JDBC_URL";
    private static final String LOCAL = "jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres";

    private static PgServer instance;

    private final DatabaseUrl admin;
    private final String template;
    private final String how;

    private PgServer(DatabaseUrl admin, String how) {
        this.admin = admin;
        this.how = how;
        // one template per JVM, so suites of several checkouts can share a server
        this.template = "pgd_tpl_" + UUID.randomUUID().toString().substring(0, 8);
    }

    public static synchronized PgServer get() {
        if (instance == null) {
            instance = choose();
            instance.buildTemplate();
            Runtime.getRuntime().addShutdownHook(new Thread(instance::dropTemplate, "pgd-test-template-drop"));
            System.out.println("[pgdispatch tests] PostgreSQL: " + instance.how + " (" + instance.admin + ")");
        }
        return instance;
    }

    private static PgServer choose() {
        String explicit = System.getenv(ENV);
        if (explicit != null && !explicit.isBlank()) {
            return new PgServer(DatabaseUrl.parse(ENV, explicit), ENV);
        }
        if (dockerAvailable()) {
            var c = new org.testcontainers.postgresql.PostgreSQLContainer("postgres:15-alpine");
            c.start();
            String url = "jdbc:postgresql://" + c.getHost() + ":" + c.getFirstMappedPort() + "/postgres?user="
                    + c.getUsername() + "&password=" + c.getPassword();
            return new PgServer(DatabaseUrl.parse("testcontainers", url), "Testcontainers postgres:15-alpine");
        }
        return new PgServer(DatabaseUrl.parse("local", LOCAL), "local server (no Docker engine; set " + ENV + " to choose another)");
    }

    private static boolean dockerAvailable() {
        try {
            return org.testcontainers.DockerClientFactory.instance().isDockerAvailable();
        } catch (Throwable t) {
            return false;
        }
    }

    public DatabaseUrl admin() {
        return admin;
    }

    public String template() {
        return template;
    }

    private void buildTemplate() {
        exec("DROP DATABASE IF EXISTS " + template);
        exec("CREATE DATABASE " + template);
        DatabaseUrl url = admin.withDatabase(template);
        try (Database db = Database.open(url, 3, "pgd-test-template")) {
            Flyway flyway = Database.flyway(db.dataSource(), null);
            flyway.migrate();
        }
    }

    private void dropTemplate() {
        try {
            exec("DROP DATABASE IF EXISTS " + template + " WITH (FORCE)");
        } catch (RuntimeException ignored) {
            // the server may be gone already at JVM exit
        }
    }

    /** A fresh database cloned from the migrated template. */
    public DatabaseUrl createFromTemplate(String name) {
        exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        exec("CREATE DATABASE " + name + " TEMPLATE " + template);
        return admin.withDatabase(name);
    }

    /** A fresh empty database (no migrations). */
    public DatabaseUrl createEmpty(String name) {
        exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        exec("CREATE DATABASE " + name);
        return admin.withDatabase(name);
    }

    public void drop(String name) {
        exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }

    /** Runs an admin statement against the server's postgres database (names are generated, never user input). */
    public void exec(String sql) {
        try (Connection c = Database.connect(admin); Statement st = c.createStatement()) {
            st.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }
}

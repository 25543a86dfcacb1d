package pgdispatch.ops;

import java.util.concurrent.Callable;
import org.flywaydb.core.api.MigrationInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.Migrations;

/** {@code migrate}: brings the database schema up to date (creating the database when missing). */
@Command(name = "migrate", mixinStandardHelpOptions = true,
        description = "Apply pending schema migrations (creates the database when it does not exist).",
        subcommands = {MigrateCommand.Info.class, MigrateCommand.Validate.class})
final class MigrateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--baseline-version", paramLabel = "N",
            description = "Adopt an existing database whose tasks table matches migration N (use 1 for a pre-lease installation)")
    String baselineVersion;

    @Option(names = "--dry-run", description = "Print the pending migrations and change nothing")
    boolean dryRun;

    @Override
    public Integer call() throws Exception {
        if (baselineVersion != null && !baselineVersion.matches("[1-9][0-9]{0,5}")) {
            throw new IllegalArgumentException("--baseline-version=" + baselineVersion + " must be a migration number such as 1");
        }
        DispatcherConfig cfg = Env.config();
        var out = spec.commandLine().getOut();
        if (dryRun && !Database.exists(cfg.databaseUrl())) {
            out.println("database " + cfg.databaseUrl().database() + " does not exist: migrate would create it and apply"
                    + " every migration; nothing changed");
            return Main.OK;
        }
        if (!dryRun && Database.createIfMissing(cfg.databaseUrl())) {
            out.println("created database " + cfg.databaseUrl().database());
        }
        String where = where(cfg);
        try (Database db = Database.open(cfg.databaseUrl(), 3, "pgdispatch-migrate")) {
            Migrations migrations = db.migrations();
            if (dryRun) {
                Migrations.Preview p = migrations.preview(baselineVersion);
                out.println(where + ": " + p.pending().size() + " pending migration(s)"
                        + (baselineVersion != null ? " after baselining at version " + baselineVersion : ""));
                for (String note : p.notes()) out.println("  (would have " + note + ")");
                for (MigrationInfo m : p.pending()) out.println("  V" + m.getVersion() + " " + m.getDescription());
                return Main.OK;
            }
            Migrations.Result r = migrations.migrate(baselineVersion);
            for (String note : r.notes()) out.println(where + ": " + note);
            out.println(where + ": applied " + r.flyway().migrationsExecuted
                    + " migration(s); schema version " + (r.flyway().targetSchemaVersion != null ? r.flyway().targetSchemaVersion
                    : migrations.flyway().info().current().getVersion().getVersion()));
            return Main.OK;
        }
    }

    /** "database jobs", or "database app schema jobs" outside the default schema. */
    static String where(DispatcherConfig cfg) {
        return "database " + cfg.databaseUrl().database()
                + (cfg.databaseUrl().schema().equals("public") ? "" : " schema " + cfg.databaseUrl().schema());
    }

    /** {@code migrate info}: every migration with its state. */
    @Command(name = "info", mixinStandardHelpOptions = true, description = "List migrations and their state.")
    static final class Info implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            DispatcherConfig cfg = Env.config();
            try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-migrate")) {
                var out = spec.commandLine().getOut();
                for (MigrationInfo m : db.flyway().info().all()) {
                    out.printf("%-6s %-45s %-10s %s%n", m.getVersion() == null ? "" : m.getVersion().getVersion(),
                            m.getDescription(), m.getState().getDisplayName(),
                            m.getInstalledOn() == null ? "" : m.getInstalledOn().toInstant());
                }
                return Main.OK;
            }
        }
    }

    /** {@code migrate validate}: checks applied migrations match this build. */
    @Command(name = "validate", mixinStandardHelpOptions = true,
            description = "Check that the applied migrations match this build and none is pending.")
    static final class Validate implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            DispatcherConfig cfg = Env.config();
            try (Database db = Database.open(cfg.databaseUrl(), 2, "pgdispatch-migrate")) {
                var r = db.flyway().validateWithResult();
                if (!r.validationSuccessful) {
                    spec.commandLine().getErr().println("pgdispatch: migrations do not validate: " + r.getAllErrorMessages());
                    return Main.FAILURE;
                }
                String v = db.requireCurrentSchema();
                spec.commandLine().getOut().println(where(cfg) + ": schema version " + v + ", valid");
                return Main.OK;
            }
        }
    }
}

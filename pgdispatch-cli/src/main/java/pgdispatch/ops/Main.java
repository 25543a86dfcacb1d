package pgdispatch.ops;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import pgdispatch.config.ConfigException;
import pgdispatch.runtime.Dispatcher;

/**
 * {@code pgdispatch <command>}: the command line. Exit codes: 0 ok, 1 failure, 2 usage error (bad
 * arguments or configuration); errors are one line naming the problem.
 */
@Command(name = "pgdispatch", mixinStandardHelpOptions = true, version = "pgdispatch " + Dispatcher.VERSION,
        description = "PostgreSQL-backed task dispatcher with leases, fencing and crash recovery.",
        subcommands = {MigrateCommand.class, RunCommand.class, EnqueueCommand.class, StatusCommand.class,
                ReapCommand.class, TasksCommand.class, QueuesCommand.class, LimitsCommand.class, SchedulesCommand.class, NodesCommand.class, DemoCommand.class, UiCommand.class, BenchCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    public static final int OK = 0;
    public static final int FAILURE = 1;
    public static final int USAGE = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required");
    }

    public static void main(String[] args) {
        System.exit(execute(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs one command line with the given output streams; returns the exit code (tests call this). */
    public static int execute(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new Main());
        // picocli reads an argument "@path" as a file of more arguments by default: `--kind @/etc/hostname`
        // then enqueued the file's first word, and errors echoed the file's text. A value is what was typed.
        cl.setExpandAtFiles(false);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExitCodeExceptionMapper(e -> e instanceof ConfigException || e instanceof IllegalArgumentException ? USAGE : FAILURE);
        cl.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("pgdispatch: " + ex.getMessage()
                    + " (see: pgdispatch " + commandPath(ex.getCommandLine()) + "--help)");
            return USAGE;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            c.getErr().println("pgdispatch: " + oneLine(ex));
            return ex instanceof ConfigException || ex instanceof IllegalArgumentException ? USAGE : FAILURE;
        });
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    private static String commandPath(CommandLine c) {
        StringBuilder sb = new StringBuilder();
        for (CommandLine p = c; p != null && p.getParent() != null; p = p.getParent()) {
            sb.insert(0, p.getCommandName() + " ");
        }
        return sb.toString();
    }

    static String oneLine(Throwable e) {
        if (e instanceof ConfigException ce) return String.join("; ", ce.problems());
        String m = e.getMessage();
        if (m == null || m.isBlank()) m = e.getClass().getSimpleName();
        return m.strip().replace('\n', ' ');
    }
}

package pgdispatch.ops;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Collectors;
import pgdispatch.config.DatabaseUrl;

/** Runs the command line in-process against a test database, capturing both streams. */
final class Cli {
    private Cli() {}

    /** One run's exit code and output. */
    record Run(int code, String out, String err) {
        /** The error output's lines (one-line reasons are asserted on). */
        String[] errLines() {
            return err.strip().isEmpty() ? new String[0] : err.strip().split("\n");
        }
    }

    /** {@code url} as a DATABASE_URL value the command parses (user, password and parameters included). */
    static String databaseUrl(DatabaseUrl url) {
        StringBuilder sb = new StringBuilder("postgresql://");
        if (url.user() != null) {
            sb.append(enc(url.user()));
            if (url.password() != null) sb.append(':').append(enc(url.password()));
            sb.append('@');
        }
        sb.append(url.host()).append(':').append(url.port()).append('/').append(url.database());
        if (!url.params().isEmpty()) {
            sb.append('?').append(url.params().entrySet().stream().map(e -> enc(e.getKey()) + "=" + enc(e.getValue()))
                    .collect(Collectors.joining("&")));
        }
        return sb.toString();
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    static Run run(DatabaseUrl url, String... args) {
        return run(Map.of(), url, args);
    }

    /** With extra environment variables (configuration) besides DATABASE_URL. */
    static Run run(Map<String, String> env, DatabaseUrl url, String... args) {
        Map<String, String> all = new HashMap<>(env);
        all.put("DATABASE_URL", databaseUrl(url));
        all.putIfAbsent("DISPATCHER_NODE_ID", "cli-test");
        Env.override(all);
        try {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            int code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
            return new Run(code, out.toString(), err.toString());
        } finally {
            Env.override(null);
        }
    }
}

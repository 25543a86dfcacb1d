package pgdispatch.ops;

import java.util.HashMap;
import java.util.Map;
import pgdispatch.config.DispatcherConfig;

/**
 * The environment the commands read their configuration from; tests replace it with a map (never
 * touching the process environment).
 */
public final class Env {
    private static volatile Map<String, String> override;

    private Env() {}

    public static Map<String, String> get() {
        Map<String, String> o = override;
        return o != null ? o : System.getenv();
    }

    /** Tests: read {@code env} instead of the process environment (null restores it). */
    public static void override(Map<String, String> env) {
        override = env == null ? null : Map.copyOf(env);
    }

    /** The configuration with some variables set by command-line options (they win over the environment). */
    public static DispatcherConfig config(Map<String, String> fromOptions) {
        Map<String, String> env = new HashMap<>(get());
        fromOptions.forEach((k, v) -> {
            if (v != null) env.put(k, v);
        });
        return DispatcherConfig.fromEnv(env);
    }

    public static DispatcherConfig config() {
        return config(Map.of());
    }
}

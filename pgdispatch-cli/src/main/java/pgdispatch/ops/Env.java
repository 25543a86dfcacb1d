package pgdispatch.ops;

import java.util.HashMap;
import java.util.Map;
import pgdispatch.config.ConfigException;
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

    /** {@code PGDISPATCH_UI_TOKEN}: enables the dashboard's actions; null when unset or empty (read-only). */
    public static String uiToken() {
        String t = get().get("PGDISPATCH_UI_TOKEN");
        return t == null || t.isEmpty() ? null : t;
    }

    /** {@code PGDISPATCH_UI}: whether {@code run} serves the dashboard on its HTTP port ({@code on}, the default, or {@code off}). */
    public static boolean uiEnabled() {
        String v = get().getOrDefault("PGDISPATCH_UI", "on");
        return switch (v) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new ConfigException("PGDISPATCH_UI=" + v + " must be on or off");
        };
    }

    public static DispatcherConfig config() {
        return config(Map.of());
    }
}

package pgdispatch.ops;

import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.stream.Stream;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.ConfigException;

/**
 * The user's handlers for {@code run --handlers} / {@code PGDISPATCH_HANDLERS}: jars (or directories of
 * jars) loaded in one child class loader of the service's, each handler found through
 * {@code ServiceLoader} ({@code META-INF/services/pgdispatch.api.TaskHandler} in the jar). {@code java -jar}
 * ignores {@code -cp} and {@code CLASSPATH}: this is the way in for code the service did not ship with.
 */
final class HandlerJars {
    static final String VARIABLE = "PGDISPATCH_HANDLERS";

    /** Handlers found, with the jar each came from (for the start-up log). */
    record Found(List<TaskHandler> handlers, Map<String, String> sourceByKind, List<Path> jars) {}

    private HandlerJars() {}

    /**
     * The jars named by {@code spec}: entries separated by {@code ,} or the platform's path separator,
     * each a {@code .jar} file or a directory whose {@code *.jar} files are taken (sorted, not recursive).
     */
    static List<Path> jars(String spec) {
        List<Path> jars = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        for (String raw : spec.split("[," + java.util.regex.Pattern.quote(java.io.File.pathSeparator) + "]")) {
            String entry = raw.strip();
            if (entry.isEmpty()) continue;
            Path p = Path.of(entry);
            if (Files.isDirectory(p)) {
                try (Stream<Path> files = Files.list(p)) {
                    files.filter(f -> f.getFileName().toString().endsWith(".jar") && Files.isRegularFile(f)).sorted()
                            .forEach(jars::add);
                } catch (IOException e) {
                    problems.add(VARIABLE + "=" + spec + ": cannot list directory " + p + ": " + e.getMessage());
                }
            } else if (Files.isRegularFile(p) && entry.endsWith(".jar")) {
                jars.add(p);
            } else if (Files.exists(p)) {
                problems.add(VARIABLE + "=" + spec + ": " + p + " is neither a .jar file nor a directory of jars");
            } else {
                problems.add(VARIABLE + "=" + spec + ": " + p + " does not exist");
            }
        }
        // an empty directory is fine (the image's /handlers before anything is mounted); an empty
        // node is refused later when the built-in kinds are off as well
        if (!problems.isEmpty()) throw new ConfigException(problems);
        return jars;
    }

    /** Loads every handler the jars of {@code spec} declare; jars that declare none are an error. */
    static Found load(String spec, ClassLoader parent) {
        List<Path> jars = jars(spec);
        if (jars.isEmpty()) return new Found(List.of(), Map.of(), jars);
        List<TaskHandler> handlers = new ArrayList<>();
        Map<String, String> sources = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        URLClassLoader loader = new URLClassLoader("pgdispatch-handlers", urls(jars), parent);
        var it = ServiceLoader.load(TaskHandler.class, loader).stream().iterator();
        while (true) {
            ServiceLoader.Provider<TaskHandler> provider;
            TaskHandler h;
            try {
                if (!it.hasNext()) break;
                provider = it.next();
                h = provider.get();
            } catch (ServiceConfigurationError | LinkageError e) {
                // a listed class missing, not a TaskHandler, without a public no-argument constructor,
                // or its constructor threw: ServiceLoader says which
                problems.add(VARIABLE + "=" + spec + ": a handler could not be loaded: " + describe(e));
                continue;
            }
            String from = source(h.getClass());
            String kind;
            try {
                kind = h.kind();
            } catch (RuntimeException e) {
                problems.add(VARIABLE + "=" + spec + ": " + h.getClass().getName() + ".kind() threw " + describe(e));
                continue;
            }
            if (sources.containsKey(kind)) {
                problems.add(VARIABLE + "=" + spec + ": kind '" + kind + "' is handled twice: by "
                        + sources.get(kind) + " and by " + h.getClass().getName() + " (" + from + ")");
                continue;
            }
            sources.put(kind, h.getClass().getName() + " (" + from + ")");
            handlers.add(h);
        }
        if (problems.isEmpty() && handlers.isEmpty()) {
            problems.add(VARIABLE + "=" + spec + ": no TaskHandler found in " + jars.stream().map(Path::toString).toList()
                    + " (a handler jar lists its classes in META-INF/services/" + TaskHandler.class.getName() + ")");
        }
        if (!problems.isEmpty()) throw new ConfigException(problems);
        return new Found(List.copyOf(handlers), sources, jars);
    }

    private static URL[] urls(List<Path> jars) {
        URL[] urls = new URL[jars.size()];
        for (int i = 0; i < urls.length; i++) {
            try {
                urls[i] = jars.get(i).toUri().toURL();
            } catch (MalformedURLException e) {
                throw new IllegalStateException(e);
            }
        }
        return urls;
    }

    private static String source(Class<?> c) {
        var cs = c.getProtectionDomain().getCodeSource();
        if (cs == null || cs.getLocation() == null) return "built in";
        try {
            return Path.of(cs.getLocation().toURI()).getFileName().toString();
        } catch (Exception e) {
            return cs.getLocation().toString();
        }
    }

    private static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder(e.getClass().getSimpleName() + ": " + e.getMessage());
        for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            sb.append(" (").append(c.getClass().getSimpleName()).append(": ").append(c.getMessage()).append(')');
        }
        return sb.toString();
    }
}

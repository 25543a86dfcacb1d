package pgdispatch.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.ConfigException;

/** {@code run --handlers}: a user's jar compiled here, loaded in a child class loader through ServiceLoader. */
class HandlerJarsTest {
    @TempDir
    Path dir;

    /** A jar with handler classes {@code kinds} (class Handler_<kind>_<name>), listed in META-INF/services unless {@code listed} is false. */
    private Path handlerJar(String name, boolean listed, String... kinds) throws IOException {
        Path src = Files.createDirectories(dir.resolve("src-" + name + "/acme"));
        Path classes = Files.createDirectories(dir.resolve("classes-" + name));
        StringBuilder services = new StringBuilder();
        for (String kind : kinds) {
            String cls = "Handler_" + kind + "_" + name;
            Files.writeString(src.resolve(cls + ".java"), """
                    package acme;
                    public class %s implements pgdispatch.api.TaskHandler {
                        public String kind() { return "%s"; }
                        public Object handle(pgdispatch.api.TaskContext ctx) { return java.util.Map.of("ok", true); }
                    }
                    """.formatted(cls, kind));
            services.append("acme.").append(cls).append('\n');
        }
        var javac = ToolProvider.getSystemJavaCompiler();
        List<String> args = new java.util.ArrayList<>(List.of("-d", classes.toString(), "-cp", System.getProperty("java.class.path")));
        try (var files = Files.list(src)) {
            files.forEach(f -> args.add(f.toString()));
        }
        assertThat(javac.run(null, null, null, args.toArray(String[]::new))).isZero();
        Path jar = dir.resolve(name + ".jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar)); var files = Files.walk(classes)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                out.putNextEntry(new JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                out.write(Files.readAllBytes(f));
            }
            if (listed) {
                out.putNextEntry(new JarEntry("META-INF/services/" + TaskHandler.class.getName()));
                out.write(services.toString().getBytes(StandardCharsets.UTF_8));
            }
        }
        return jar;
    }

    @Test
    void loadsEveryHandlerOfEveryJarInADirectory() throws IOException {
        Path jars = Files.createDirectories(dir.resolve("handlers"));
        Files.move(handlerJar("billing", true, "invoice", "refund"), jars.resolve("billing.jar"));
        Files.move(handlerJar("mail", true, "welcome"), jars.resolve("mail.jar"));
        Files.writeString(jars.resolve("README.txt"), "not a jar");

        HandlerJars.Found f = HandlerJars.load(jars.toString(), getClass().getClassLoader());

        assertThat(f.handlers()).extracting(TaskHandler::kind).containsExactlyInAnyOrder("invoice", "refund", "welcome");
        assertThat(f.sourceByKind()).containsEntry("welcome", "acme.Handler_welcome_mail (mail.jar)");
        // a child loader: the service's own class path does not see the user's classes
        assertThat(f.handlers().get(0).getClass().getClassLoader()).isNotSameAs(getClass().getClassLoader());
    }

    @Test
    void aJarThatListsNoHandlerIsAnErrorNamingTheServicesFile() throws IOException {
        Path jar = handlerJar("unlisted", false, "x");
        assertThatThrownBy(() -> HandlerJars.load(jar.toString(), getClass().getClassLoader()))
                .isInstanceOf(ConfigException.class)
                .hasMessage("PGDISPATCH_HANDLERS=" + jar + ": no TaskHandler found in [" + jar
                        + "] (a handler jar lists its classes in META-INF/services/pgdispatch.api.TaskHandler)");
    }

    @Test
    void aKindHandledByTwoJarsIsAnErrorNamingBoth() throws IOException {
        Path a = handlerJar("a", true, "dup");
        Path b = handlerJar("b", true, "dup");
        assertThatThrownBy(() -> HandlerJars.load(a + "," + b, getClass().getClassLoader()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("kind 'dup' is handled twice: by acme.Handler_dup_a (a.jar) and by acme.Handler_dup_b (b.jar)");
    }

    @Test
    void pathsThatAreNotJarsAreErrorsEachNamed() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        Path text = Files.writeString(dir.resolve("handler.txt"), "x");
        assertThatThrownBy(() -> HandlerJars.jars(dir.resolve("missing") + "," + text))
                .isInstanceOf(ConfigException.class)
                .hasMessage("PGDISPATCH_HANDLERS=" + dir.resolve("missing") + "," + text + ": " + dir.resolve("missing")
                        + " does not exist\nPGDISPATCH_HANDLERS=" + dir.resolve("missing") + "," + text + ": " + text
                        + " is neither a .jar file nor a directory of jars");
        // an empty directory (the image's /handlers before a mount) is no error: nothing to load
        assertThat(HandlerJars.load(empty.toString(), getClass().getClassLoader()).handlers()).isEmpty();
    }

    @Test
    void builtinHandlersSwitchIsTrueOrFalse() {
        assertThat(RunCommand.builtins(null)).isTrue();
        assertThat(RunCommand.builtins("FALSE")).isFalse();
        assertThatThrownBy(() -> RunCommand.builtins("no")).hasMessage("PGDISPATCH_BUILTIN_HANDLERS=no must be true or false");
    }

}

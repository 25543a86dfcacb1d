package pgdispatch.chaos;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One dispatcher node of the chaos run: a real {@code java -jar pgdispatch.jar run} process with its own
 * node id, talking to PostgreSQL through its {@link ChaosProxy}. Restarts reuse the node id (so the new
 * incarnation recovers what the old one left). Output of every incarnation goes to one log file.
 */
final class NodeProcess {
    /** What the driver did to the process last; faults are only applied to an {@link State#UP} node. */
    enum State { UP, KILLED, DRAINING, PAUSED, EXITED }

    final String nodeId;
    final ChaosProxy proxy;
    private final List<String> command;
    private final Map<String, String> env;
    private final File log;
    private final File pidFile;
    private Process process;
    private volatile State state = State.EXITED;
    private int starts;

    NodeProcess(String nodeId, ChaosProxy proxy, List<String> command, Map<String, String> env, File log, File pidFile) {
        this.nodeId = nodeId;
        this.proxy = proxy;
        this.command = List.copyOf(command);
        this.env = Map.copyOf(env);
        this.log = log;
        this.pidFile = pidFile;
    }

    synchronized void start() throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putAll(env);
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log));
        starts++;
        process = pb.start();
        // the bash front kills whatever is listed here if the driver itself dies (its trap)
        java.nio.file.Files.writeString(pidFile.toPath(), process.pid() + "\n", java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
        state = State.UP;
    }

    State state() {
        return state;
    }

    /** The process ended without the driver asking (e.g. it could not reach the database at start). */
    synchronized boolean exitedOnItsOwn() {
        return state == State.UP && process != null && !process.isAlive();
    }

    synchronized int exitCode() {
        return process == null || process.isAlive() ? -1 : process.exitValue();
    }

    synchronized void markExited() {
        state = State.EXITED;
    }

    int starts() {
        return starts;
    }

    long pid() {
        return process == null ? -1 : process.pid();
    }

    /** kill -9: a crash; the process writes nothing more. */
    synchronized void kill() throws InterruptedException {
        if (process == null) return;
        process.destroyForcibly(); // SIGKILL ends a stopped (SIGSTOP) process too
        process.waitFor(10, TimeUnit.SECONDS);
        state = State.KILLED;
    }

    /** SIGTERM: the node drains, releases what it holds, marks itself stopped and exits. */
    synchronized void terminate() {
        if (process == null || !process.isAlive()) return;
        process.destroy();
        state = State.DRAINING;
    }

    /** Waits for a draining node to exit; kills it when it takes longer than {@code timeoutMs}. */
    boolean awaitExit(long timeoutMs) throws InterruptedException {
        Process p;
        synchronized (this) {
            p = process;
        }
        if (p == null) return true;
        boolean exited = p.waitFor(timeoutMs, TimeUnit.MILLISECONDS);
        if (!exited) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        synchronized (this) {
            if (process == p) state = State.EXITED;
        }
        return exited;
    }

    /** SIGSTOP: the JVM freezes, every thread at once, as a long GC pause or a suspended VM would. */
    synchronized void pause() throws IOException, InterruptedException {
        if (process == null || !process.isAlive()) return;
        signal("STOP");
        state = State.PAUSED;
    }

    /** SIGCONT: the zombie wakes up still believing it holds its leases. */
    synchronized void resume() throws IOException, InterruptedException {
        if (process == null || state != State.PAUSED) return;
        signal("CONT");
        state = State.UP;
    }

    private void signal(String sig) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("kill", "-" + sig, Long.toString(process.pid())));
        Process k = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        k.getInputStream().readAllBytes();
        k.waitFor(5, TimeUnit.SECONDS);
    }

    boolean alive() {
        Process p = process;
        return p != null && p.isAlive();
    }
}

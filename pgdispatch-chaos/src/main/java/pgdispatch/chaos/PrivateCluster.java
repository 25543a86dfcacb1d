package pgdispatch.chaos;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A PostgreSQL cluster of the chaos run's own (Debian's {@code pg_createcluster} on a free port, trust
 * authentication on loopback), so the run may restart the server under load without touching the
 * machine's main cluster. Dropped at the end.
 */
final class PrivateCluster implements AutoCloseable {
    final String version;
    final String name;
    final int port;
    private boolean dropped;

    private PrivateCluster(String version, String name, int port) {
        this.version = version;
        this.name = name;
        this.port = port;
    }

    /** Why a private cluster cannot be made here, or null when it can. */
    static String unavailableBecause() {
        if (!new File("/usr/bin/pg_createcluster").canExecute() || !new File("/usr/bin/pg_ctlcluster").canExecute()) {
            return "pg_createcluster/pg_ctlcluster not found (Debian postgresql-common)";
        }
        if (newestVersion() == null) return "no PostgreSQL server binaries under /usr/lib/postgresql";
        if (!"root".equals(System.getProperty("user.name")) && !"postgres".equals(System.getProperty("user.name"))) {
            return "pg_createcluster needs root or the postgres user, running as " + System.getProperty("user.name");
        }
        return null;
    }

    static PrivateCluster create(String runId) throws IOException, InterruptedException {
        String version = newestVersion();
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        String name = "pgdchaos" + runId;
        run(120, "pg_createcluster", version, name, "-p", Integer.toString(port), "--start", "--",
                "--auth=trust");
        return new PrivateCluster(version, name, port);
    }

    /** A fast restart: every session is terminated, the server is gone for a moment, then back. */
    void restart() throws IOException, InterruptedException {
        run(120, "pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m", "fast");
    }

    private static String newestVersion() {
        File[] dirs = new File("/usr/lib/postgresql").listFiles();
        if (dirs == null) return null;
        String best = null;
        for (File d : dirs) {
            if (!new File(d, "bin/initdb").canExecute()) continue;
            if (best == null || Integer.parseInt(d.getName().replaceAll("\\D", "0")) > Integer.parseInt(best.replaceAll("\\D", "0"))) {
                best = d.getName();
            }
        }
        return best;
    }

    private static void run(int timeoutS, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(new ArrayList<>(List.of(cmd))).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + ": timed out after " + timeoutS + "s");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + new String(out).strip());
        }
    }

    @Override
    public void close() {
        if (dropped) return;
        dropped = true;
        try {
            run(120, "pg_dropcluster", "--stop", version, name);
        } catch (IOException | InterruptedException e) {
            System.err.println("chaos-run: dropping private cluster " + version + "/" + name + " failed: " + e.getMessage());
        }
    }
}

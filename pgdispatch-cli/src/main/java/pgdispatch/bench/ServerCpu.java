package pgdispatch.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * CPU time used by every PostgreSQL process of this machine (user + system, from {@code /proc}): the
 * server's cost per task, when the server runs here. Everything the server does meanwhile counts, so
 * the figure means something only on a machine that runs nothing else against it; {@code -1} when the
 * server is not local or {@code /proc} cannot be read.
 */
final class ServerCpu {
    private ServerCpu() {}

    /** Linux's USER_HZ: the unit of /proc/PID/stat's utime and stime on every platform this runs on. */
    private static final long TICKS_PER_S = 100;

    /** Nanoseconds of CPU used so far by processes named {@code postgres}, or -1. */
    static long nanos(String host) {
        if (!("127.0.0.1".equals(host) || "localhost".equals(host) || "::1".equals(host))) return -1;
        Path proc = Path.of("/proc");
        if (!Files.isDirectory(proc)) return -1;
        long ticks = 0;
        try (Stream<Path> pids = Files.list(proc)) {
            for (Path p : (Iterable<Path>) pids.filter(d -> d.getFileName().toString().chars().allMatch(Character::isDigit))::iterator) {
                ticks += ticks(p.resolve("stat"));
            }
        } catch (IOException e) {
            return -1;
        }
        return ticks * 1_000_000_000L / TICKS_PER_S;
    }

    /**
     * utime + stime + cutime + cstime of one process when its name is postgres, 0 otherwise or when it is
     * gone: a backend that exits takes its own times with it, and they reappear in the postmaster's
     * children's times once it has reaped it, so the sum over the living processes keeps growing.
     */
    private static long ticks(Path stat) {
        String s;
        try {
            s = Files.readString(stat);
        } catch (IOException e) {
            return 0; // exited meanwhile
        }
        int open = s.indexOf('('), close = s.lastIndexOf(')');
        if (open < 0 || close < open || !s.substring(open + 1, close).equals("postgres")) return 0;
        String[] f = s.substring(close + 2).split(" ");
        // after "pid (comm) ": state is field 3; utime, stime, cutime, cstime are fields 14-17 (1-based in proc(5))
        return Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
    }

    /** Microseconds per task between two readings, or null when either is unknown. */
    static Double perTask(long before, long after, long tasks) {
        if (before < 0 || after < 0) return null;
        return (after - before) / 1000.0 / tasks;
    }
}

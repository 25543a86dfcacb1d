package pgdispatch.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;

/**
 * CPU time this JVM has used (all threads): the runtime's own cost per task, which, unlike wall time,
 * does not depend on what else the machine runs. A {@link Reading} also splits it, on Linux, into the
 * JIT compiler's threads ({@code C1/C2 CompilerThread}) and the garbage collector's ({@code GC Thread#},
 * {@code G1 ...}), read from {@code /proc/self/task}; the rest is the application's threads (the node's
 * claimer, workers, completer, renewer, pool) and the JVM's small housekeeping threads. The bench's own
 * thread, which waits for the nodes, is left out. The JIT and GC threads live as long as the JVM, so the difference of two
 * readings of the living threads is their whole share.
 */
final class ClientCpu {
    private ClientCpu() {}

    static long nanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return 0;
    }

    /** Linux's USER_HZ, the unit of /proc's utime and stime (used when schedstat is missing). */
    private static final long TICKS_PER_S = 100;

    /**
     * CPU nanoseconds so far: the whole process, its JIT threads, its GC threads (-1: not readable) and the
     * thread taking the reading (the bench's own, waiting for the nodes: not the node's cost). Two
     * readings compared must be taken on the same thread.
     */
    record Reading(long total, long jit, long gc, long self) {
        static Reading now() {
            long jit = 0, gc = 0;
            Path tasks = Path.of("/proc/self/task");
            try (Stream<Path> threads = Files.list(tasks)) {
                for (Path t : (Iterable<Path>) threads::iterator) {
                    String comm;
                    try {
                        comm = Files.readString(t.resolve("comm")).strip();
                    } catch (IOException e) {
                        continue; // ended meanwhile
                    }
                    String kind = kind(comm);
                    if (kind == null) continue;
                    long ns = threadNanos(t);
                    if (kind.equals("jit")) jit += ns;
                    else gc += ns;
                }
            } catch (IOException | RuntimeException e) {
                jit = -1;
                gc = -1;
            }
            return new Reading(nanos(), jit, gc, ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime());
        }

        /** The figures per task between {@code before} and this reading, keyed as the scenario line prints them. */
        Map<String, Object> perTask(Reading before, long tasks, String prefix) {
            Map<String, Object> f = new java.util.LinkedHashMap<>();
            long all = total - before.total - Math.max(0, self - before.self); // the node's threads only
            f.put(prefix + "cpu_us_per_task", all / 1000.0 / tasks);
            if (jit >= 0 && before.jit >= 0) {
                long j = jit - before.jit, g = gc - before.gc;
                f.put(prefix + "app_cpu_us_per_task", (all - j - g) / 1000.0 / tasks);
                f.put(prefix + "jit_cpu_us_per_task", j / 1000.0 / tasks);
                f.put(prefix + "gc_cpu_us_per_task", g / 1000.0 / tasks);
            }
            return f;
        }
    }

    /** "jit", "gc" or null (an application or housekeeping thread), from the thread's name as Linux shows it. */
    static String kind(String comm) {
        if (comm.contains("CompilerThre")) return "jit"; // "C2 CompilerThre", "C1 CompilerThre" (15 characters)
        if (comm.startsWith("GC Thread") || comm.startsWith("G1 ") || comm.startsWith("GC ")) return "gc";
        return null;
    }

    /** A thread's run time: schedstat's nanoseconds, else stat's utime + stime ticks. */
    private static long threadNanos(Path thread) {
        try {
            String s = Files.readString(thread.resolve("schedstat"));
            return Long.parseLong(s.substring(0, s.indexOf(' ')));
        } catch (IOException | RuntimeException e) {
            try {
                String s = Files.readString(thread.resolve("stat"));
                String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
                return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 1_000_000_000L / TICKS_PER_S;
            } catch (IOException | RuntimeException e2) {
                return 0;
            }
        }
    }
}

package pgdispatch.bench;

import java.lang.management.ManagementFactory;

/**
 * CPU time this JVM has used (all threads): the runtime's own cost per task, which, unlike wall time,
 * does not depend on what else the machine runs.
 */
final class ClientCpu {
    private ClientCpu() {}

    static long nanos() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getProcessCpuTime();
        }
        return 0;
    }
}

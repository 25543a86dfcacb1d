package pgdispatch.config;

import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Every setting of a node, read once from an environment map and validated before anything starts (the
 * library reads no environment variable itself: the CLI passes the process environment, the Spring Boot
 * starter its {@code pgdispatch.*} properties).
 * Durations inside; seconds (or milliseconds) only at the boundary, in the variable names.
 */
public record DispatcherConfig(
        DatabaseUrl databaseUrl,
        String nodeId,
        List<String> queues,
        int concurrency,
        Duration lease,
        Duration stale,
        int maxRequeue,
        int reapBatch,
        Duration renewInterval,
        Duration nodeTimeout,
        Duration pollInterval,
        Duration drainTimeout,
        Duration retention,
        int maxPayloadBytes,
        int maxResultBytes,
        Duration retryBase,
        Duration retryMax,
        int poolSize,
        Duration socketTimeout,
        String httpHost,
        int httpPort) {

    public static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}");
    /** Port value that turns the HTTP endpoint off. */
    public static final int HTTP_OFF = -1;

    public DispatcherConfig {
        queues = List.copyOf(queues);
    }

    /** Reads {@code env}; every problem found is reported together in one {@link ConfigException}. */
    public static DispatcherConfig fromEnv(Map<String, String> env) {
        Reader r = new Reader(env);
        DatabaseUrl url = null;
        try {
            url = DatabaseUrl.parse("DATABASE_URL", env.getOrDefault("DATABASE_URL", DatabaseUrl.DEFAULT));
        } catch (ConfigException e) {
            r.problems.addAll(e.problems());
        }
        String schema = env.get("PGDISPATCH_SCHEMA");
        if (schema != null) {
            schema = schema.strip();
            if (!DatabaseUrl.SCHEMA_NAME.matcher(schema).matches()) {
                r.problems.add("PGDISPATCH_SCHEMA=" + schema + " must be one schema name: 1-63 of lower-case letters,"
                        + " digits, _ (not starting with a digit)");
            } else if (url != null && url.params().containsKey(DatabaseUrl.SCHEMA_PARAM) && !url.schema().equals(schema)) {
                r.problems.add("PGDISPATCH_SCHEMA=" + schema + " contradicts DATABASE_URL's " + DatabaseUrl.SCHEMA_PARAM
                        + "=" + url.schema() + ": set one of them");
            } else if (url != null) {
                url = url.withSchema(schema);
            }
        }
        String nodeId = env.getOrDefault("DISPATCHER_NODE_ID", defaultNodeId());
        if (!NAME.matcher(nodeId).matches()) {
            r.problems.add("DISPATCHER_NODE_ID=" + nodeId + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        }
        List<String> queues = r.names("TASK_QUEUES", "default");
        int concurrency = r.intIn("TASK_CONCURRENCY", 32, 1, 10_000);
        Duration lease = r.seconds("TASK_LEASE_S", 600);
        Duration stale = r.seconds("TASK_STALE_S", 900);
        int maxRequeue = r.intIn("TASK_MAX_REQUEUE", 3, 0, 1000);
        int reapBatch = r.intIn("TASK_REAP_BATCH", 200, 1, 100_000);
        Duration renew = r.seconds("TASK_RENEW_S", 30);
        // two renewal intervals and 10 s: a node that missed one tick (heartbeat 2 x renew apart, plus two
        // ticks' run time) is not declared dead; a dead one is, within 70 s at defaults (docs/TASK_LEASES.md)
        Duration nodeTimeout = r.seconds("TASK_NODE_TIMEOUT_S", renew == null ? 70 : 2 * renew.toSeconds() + 10);
        Duration poll = r.millis("TASK_POLL_MS", 1000);
        Duration drain = r.seconds("TASK_DRAIN_S", 30, true);
        Duration retention = r.seconds("TASK_RETENTION_S", 7 * 24 * 3600);
        int maxPayload = r.intIn("TASK_MAX_PAYLOAD_BYTES", 1 << 20, 2, 256 << 20);
        // a larger result fails its attempt for good (jsonb itself stops at 255 MB, and every byte is
        // held in the node's heap until it is written)
        int maxResult = r.intIn("TASK_MAX_RESULT_BYTES", 1 << 20, 4, 256 << 20);
        Duration retryBase = r.seconds("TASK_RETRY_BASE_S", 1, true);
        Duration retryMax = r.seconds("TASK_RETRY_MAX_S", 3600, true);
        int pool = r.intIn("PGDISPATCH_POOL_SIZE", 8, 3, 1000);
        // a node's reads give up after this (0 = never): a connection the network silently dropped
        // (no FIN, no RST: a server host gone, a NAT entry expired) would otherwise block its thread
        // until the kernel gives up, hours with default keepalive settings
        Duration socketTimeout = r.seconds("PGDISPATCH_SOCKET_TIMEOUT_S", 60, true);
        String httpHost = env.getOrDefault("PGDISPATCH_HTTP_HOST", "127.0.0.1");
        int httpPort;
        String rawPort = env.get("PGDISPATCH_HTTP_PORT");
        if (rawPort != null && rawPort.strip().equalsIgnoreCase("off")) {
            httpPort = HTTP_OFF;
        } else {
            httpPort = r.intIn("PGDISPATCH_HTTP_PORT", 9464, 0, 65535);
        }
        if (lease != null && renew != null && renew.compareTo(lease) >= 0) {
            r.problems.add("TASK_RENEW_S=" + renew.toSeconds() + " must be shorter than TASK_LEASE_S=" + lease.toSeconds()
                    + " (renew a few times per lease, e.g. TASK_RENEW_S=" + Math.max(1, lease.toSeconds() / 20) + ")");
        }
        if (stale != null && renew != null && stale.compareTo(renew) <= 0) {
            r.problems.add("TASK_STALE_S=" + stale.toSeconds() + " must be longer than TASK_RENEW_S=" + renew.toSeconds()
                    + " (a healthy task's heartbeat is at most one renewal interval old)");
        }
        if (nodeTimeout != null && renew != null && nodeTimeout.compareTo(renew) <= 0) {
            r.problems.add("TASK_NODE_TIMEOUT_S=" + nodeTimeout.toSeconds() + " must be longer than TASK_RENEW_S="
                    + renew.toSeconds() + " (a node heartbeats once per renewal; 2x + 10 s is the default)");
        }
        if (socketTimeout != null && !socketTimeout.isZero() && socketTimeout.toSeconds() < 5) {
            r.problems.add("PGDISPATCH_SOCKET_TIMEOUT_S=" + socketTimeout.toSeconds() + " must be 0 (off) or at least 5"
                    + " (every statement of a node must fit in it, a renewal of 10,000 leases included)");
        }
        if (retryBase != null && retryMax != null && retryMax.compareTo(retryBase) < 0) {
            r.problems.add("TASK_RETRY_MAX_S=" + retryMax.toSeconds() + " must be at least TASK_RETRY_BASE_S="
                    + retryBase.toSeconds() + " (the cap of the backoff, which starts at the base)");
        }
        if (!r.problems.isEmpty()) {
            throw new ConfigException(r.problems);
        }
        return new DispatcherConfig(url, nodeId, queues, concurrency, lease, stale, maxRequeue, reapBatch, renew,
                nodeTimeout, poll, drain, retention, maxPayload, maxResult, retryBase, retryMax, pool, socketTimeout,
                httpHost, httpPort);
    }

    /** Defaults for tests and embedding: the default environment over {@code url}. */
    public static DispatcherConfig defaults(DatabaseUrl url) {
        return fromEnv(Map.of()).withDatabaseUrl(url);
    }

    public DispatcherConfig withDatabaseUrl(DatabaseUrl url) {
        return copy(b -> b.databaseUrl = url);
    }

    public DispatcherConfig withNode(String id, List<String> qs, int conc) {
        return copy(b -> {
            b.nodeId = id;
            b.queues = qs;
            b.concurrency = conc;
        });
    }

    /** Short timings for tests and demos: every relation between them stays valid. */
    public DispatcherConfig withTimings(Duration leaseD, Duration renewD, Duration staleD, Duration nodeTimeoutD) {
        return copy(b -> {
            b.lease = leaseD;
            b.renewInterval = renewD;
            b.stale = staleD;
            b.nodeTimeout = nodeTimeoutD;
        });
    }

    public DispatcherConfig withHttpPort(int port) {
        return copy(b -> b.httpPort = port);
    }

    public DispatcherConfig withPollInterval(Duration poll) {
        return copy(b -> b.pollInterval = poll);
    }

    public DispatcherConfig withDrainTimeout(Duration drain) {
        return copy(b -> b.drainTimeout = drain);
    }

    public DispatcherConfig withMaxRequeue(int max) {
        return copy(b -> b.maxRequeue = max);
    }

    public DispatcherConfig withSocketTimeout(Duration timeout) {
        return copy(b -> b.socketTimeout = timeout);
    }

    public DispatcherConfig withMaxResultBytes(int max) {
        return copy(b -> b.maxResultBytes = max);
    }

    public DispatcherConfig withRetryBackoff(Duration base, Duration max) {
        return copy(b -> {
            b.retryBase = base;
            b.retryMax = max;
        });
    }

    public DispatcherConfig withMaxPayloadBytes(int max) {
        return copy(b -> b.maxPayloadBytes = max);
    }

    /** This configuration with the fields {@code change} sets: one place that lists the components. */
    private DispatcherConfig copy(java.util.function.Consumer<Copy> change) {
        Copy b = new Copy(this);
        change.accept(b);
        return new DispatcherConfig(b.databaseUrl, b.nodeId, b.queues, b.concurrency, b.lease, b.stale, b.maxRequeue,
                b.reapBatch, b.renewInterval, b.nodeTimeout, b.pollInterval, b.drainTimeout, b.retention,
                b.maxPayloadBytes, b.maxResultBytes, b.retryBase, b.retryMax, b.poolSize, b.socketTimeout, b.httpHost, b.httpPort);
    }

    /** The components as mutable fields, for {@link #copy}. */
    private static final class Copy {
        DatabaseUrl databaseUrl;
        String nodeId;
        List<String> queues;
        int concurrency;
        Duration lease;
        Duration stale;
        int maxRequeue;
        int reapBatch;
        Duration renewInterval;
        Duration nodeTimeout;
        Duration pollInterval;
        Duration drainTimeout;
        Duration retention;
        int maxPayloadBytes;
        int maxResultBytes;
        Duration retryBase;
        Duration retryMax;
        int poolSize;
        Duration socketTimeout;
        String httpHost;
        int httpPort;

        Copy(DispatcherConfig c) {
            databaseUrl = c.databaseUrl;
            nodeId = c.nodeId;
            queues = c.queues;
            concurrency = c.concurrency;
            lease = c.lease;
            stale = c.stale;
            maxRequeue = c.maxRequeue;
            reapBatch = c.reapBatch;
            renewInterval = c.renewInterval;
            nodeTimeout = c.nodeTimeout;
            pollInterval = c.pollInterval;
            drainTimeout = c.drainTimeout;
            retention = c.retention;
            maxPayloadBytes = c.maxPayloadBytes;
            maxResultBytes = c.maxResultBytes;
            retryBase = c.retryBase;
            retryMax = c.retryMax;
            poolSize = c.poolSize;
            socketTimeout = c.socketTimeout;
            httpHost = c.httpHost;
            httpPort = c.httpPort;
        }
    }

    /** The effective configuration, keys sorted, secrets masked: logged once at start. */
    public Map<String, String> describe() {
        Map<String, String> m = new TreeMap<>();
        m.put("DATABASE_URL", String.valueOf(databaseUrl));
        m.put("PGDISPATCH_SCHEMA", databaseUrl.schema());
        m.put("DISPATCHER_NODE_ID", nodeId);
        m.put("TASK_QUEUES", String.join(",", queues));
        m.put("TASK_CONCURRENCY", Integer.toString(concurrency));
        m.put("TASK_LEASE_S", Long.toString(lease.toSeconds()));
        m.put("TASK_STALE_S", Long.toString(stale.toSeconds()));
        m.put("TASK_MAX_REQUEUE", Integer.toString(maxRequeue));
        m.put("TASK_REAP_BATCH", Integer.toString(reapBatch));
        m.put("TASK_RENEW_S", Long.toString(renewInterval.toSeconds()));
        m.put("TASK_NODE_TIMEOUT_S", Long.toString(nodeTimeout.toSeconds()));
        m.put("TASK_POLL_MS", Long.toString(pollInterval.toMillis()));
        m.put("TASK_DRAIN_S", Long.toString(drainTimeout.toSeconds()));
        m.put("TASK_RETENTION_S", Long.toString(retention.toSeconds()));
        m.put("TASK_MAX_PAYLOAD_BYTES", Integer.toString(maxPayloadBytes));
        m.put("TASK_MAX_RESULT_BYTES", Integer.toString(maxResultBytes));
        m.put("TASK_RETRY_BASE_S", Long.toString(retryBase.toSeconds()));
        m.put("TASK_RETRY_MAX_S", Long.toString(retryMax.toSeconds()));
        m.put("PGDISPATCH_POOL_SIZE", Integer.toString(poolSize));
        m.put("PGDISPATCH_SOCKET_TIMEOUT_S", Long.toString(socketTimeout.toSeconds()));
        m.put("PGDISPATCH_HTTP_HOST", httpHost);
        m.put("PGDISPATCH_HTTP_PORT", httpPort == HTTP_OFF ? "off" : Integer.toString(httpPort));
        return m;
    }

    private static String defaultNodeId() {
        try {
            String h = InetAddress.getLocalHost().getHostName();
            String cleaned = h.replaceAll("[^A-Za-z0-9_.:-]", "-");
            return cleaned.isEmpty() ? "node" : cleaned.length() > 100 ? cleaned.substring(0, 100) : cleaned;
        } catch (Exception e) {
            return "node";
        }
    }

    /** Collects problems while reading; each accessor returns null for an invalid value. */
    private static final class Reader {
        final Map<String, String> env;
        final List<String> problems = new ArrayList<>();

        Reader(Map<String, String> env) {
            this.env = env;
        }

        Duration seconds(String name, long def) {
            return seconds(name, def, false);
        }

        Duration seconds(String name, long def, boolean zeroAllowed) {
            String raw = env.get(name);
            if (raw == null) return Duration.ofSeconds(def);
            Long v = parseLong(raw.strip());
            if (v == null || v < (zeroAllowed ? 0 : 1) || v > 31_536_000L) {
                problems.add(name + "=" + raw + " must be a " + (zeroAllowed ? "non-negative" : "positive")
                        + " whole number of seconds (at most 31536000)");
                return null;
            }
            return Duration.ofSeconds(v);
        }

        Duration millis(String name, long def) {
            String raw = env.get(name);
            if (raw == null) return Duration.ofMillis(def);
            Long v = parseLong(raw.strip());
            if (v == null || v < 10 || v > 3_600_000L) {
                problems.add(name + "=" + raw + " must be a whole number of milliseconds from 10 to 3600000");
                return null;
            }
            return Duration.ofMillis(v);
        }

        int intIn(String name, int def, int min, int max) {
            String raw = env.get(name);
            if (raw == null) return def;
            Long v = parseLong(raw.strip());
            if (v == null || v < min || v > max) {
                problems.add(name + "=" + raw + " must be a whole number from " + min + " to " + max);
                return def;
            }
            return v.intValue();
        }

        List<String> names(String name, String def) {
            String raw = env.getOrDefault(name, def);
            List<String> out = new ArrayList<>();
            for (String part : raw.split(",")) {
                String q = part.strip();
                if (q.isEmpty()) continue;
                if (!NAME.matcher(q).matches()) {
                    problems.add(name + "=" + raw + " has an invalid queue name '" + q
                            + "': 1-100 of letters, digits, _ . : - starting with a letter or digit");
                } else if (!out.contains(q)) {
                    out.add(q);
                }
            }
            if (out.isEmpty() && problems.stream().noneMatch(p -> p.startsWith(name + "="))) {
                problems.add(name + "=" + raw + " must name at least one queue");
            }
            return out;
        }

        private static Long parseLong(String s) {
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                return null;
            }
        }
    }
}

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
    /** Upper bound of every setting in seconds: one year. */
    private static final long MAX_SECONDS = 31_536_000L;

    /**
     * The one place every rule is checked: {@link #fromEnv}, the {@code with*} methods and an embedder's
     * {@code new DispatcherConfig(...)} all pass here, so no path can start a node with, say, a renewal
     * longer than its lease. Each problem names the variable an operator would set, the value and the rule.
     */
    public DispatcherConfig {
        queues = queues == null ? null : List.copyOf(queues);
        List<String> problems = new ArrayList<>();
        requireSet(problems, "DATABASE_URL", databaseUrl);
        requireSet(problems, "DISPATCHER_NODE_ID", nodeId);
        requireSet(problems, "TASK_QUEUES", queues);
        requireSet(problems, "TASK_LEASE_S", lease);
        requireSet(problems, "TASK_STALE_S", stale);
        requireSet(problems, "TASK_RENEW_S", renewInterval);
        requireSet(problems, "TASK_NODE_TIMEOUT_S", nodeTimeout);
        requireSet(problems, "TASK_POLL_MS", pollInterval);
        requireSet(problems, "TASK_DRAIN_S", drainTimeout);
        requireSet(problems, "TASK_RETENTION_S", retention);
        requireSet(problems, "TASK_RETRY_BASE_S", retryBase);
        requireSet(problems, "TASK_RETRY_MAX_S", retryMax);
        requireSet(problems, "PGDISPATCH_SOCKET_TIMEOUT_S", socketTimeout);
        requireSet(problems, "PGDISPATCH_HTTP_HOST", httpHost);
        problems.addAll(rules(nodeId, queues, concurrency, lease, stale, maxRequeue, reapBatch, renewInterval,
                nodeTimeout, pollInterval, drainTimeout, retention, maxPayloadBytes, maxResultBytes, retryBase, retryMax,
                poolSize, socketTimeout, httpPort));
        if (!problems.isEmpty()) {
            throw new ConfigException(sorted(problems));
        }
    }

    private static void requireSet(List<String> problems, String name, Object value) {
        if (value == null) problems.add(name + " must be set (got null)");
    }

    /** Problems sorted by variable name: a stable order, and each variable's problems together. */
    private static List<String> sorted(List<String> problems) {
        List<String> out = new ArrayList<>(problems);
        out.sort(null);
        return out;
    }

    /**
     * Every rule on the values, ranges first, then the relations between them. A null value was reported
     * already (unparsable text, or not set) and its rules are skipped.
     */
    private static List<String> rules(String nodeId, List<String> queues, int concurrency, Duration lease,
            Duration stale, int maxRequeue, int reapBatch, Duration renew, Duration nodeTimeout, Duration poll,
            Duration drain, Duration retention, int maxPayload, int maxResult, Duration retryBase, Duration retryMax,
            int pool, Duration socketTimeout, int httpPort) {
        List<String> p = new ArrayList<>();
        if (nodeId != null && !NAME.matcher(nodeId).matches()) {
            p.add("DISPATCHER_NODE_ID=" + nodeId + " must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        }
        if (queues != null) {
            for (String q : queues) {
                if (q == null || !NAME.matcher(q).matches()) {
                    p.add("TASK_QUEUES=" + String.join(",", queues) + " has an invalid queue name '" + q
                            + "': 1-100 of letters, digits, _ . : - starting with a letter or digit");
                }
            }
            if (queues.isEmpty()) p.add("TASK_QUEUES= must name at least one queue");
        }
        intIn(p, "TASK_CONCURRENCY", concurrency, 1, 10_000);
        intIn(p, "TASK_MAX_REQUEUE", maxRequeue, 0, 1000);
        intIn(p, "TASK_REAP_BATCH", reapBatch, 1, 100_000);
        intIn(p, "TASK_MAX_PAYLOAD_BYTES", maxPayload, 2, 256 << 20);
        // a larger result fails its attempt for good (jsonb itself stops at 255 MB, and every byte is
        // held in the node's heap until it is written)
        intIn(p, "TASK_MAX_RESULT_BYTES", maxResult, 4, 256 << 20);
        intIn(p, "PGDISPATCH_POOL_SIZE", pool, 3, 1000);
        if (httpPort != HTTP_OFF) intIn(p, "PGDISPATCH_HTTP_PORT", httpPort, 0, 65535);
        // a value out of its range is reported once and then left out of the relations (null)
        lease = seconds(p, "TASK_LEASE_S", lease, false);
        stale = seconds(p, "TASK_STALE_S", stale, false);
        renew = seconds(p, "TASK_RENEW_S", renew, false);
        nodeTimeout = seconds(p, "TASK_NODE_TIMEOUT_S", nodeTimeout, false);
        seconds(p, "TASK_DRAIN_S", drain, true);
        seconds(p, "TASK_RETENTION_S", retention, false);
        socketTimeout = seconds(p, "PGDISPATCH_SOCKET_TIMEOUT_S", socketTimeout, true);
        retryBase = seconds(p, "TASK_RETRY_BASE_S", retryBase, true);
        retryMax = seconds(p, "TASK_RETRY_MAX_S", retryMax, true);
        if (poll != null && (poll.toMillis() < 10 || poll.toMillis() > 3_600_000L)) {
            p.add("TASK_POLL_MS=" + poll.toMillis() + " must be a whole number of milliseconds from 10 to 3600000");
        }
        if (lease != null && renew != null && renew.compareTo(lease) >= 0) {
            p.add("TASK_RENEW_S=" + secs(renew) + " must be shorter than TASK_LEASE_S=" + secs(lease)
                    + " (renew a few times per lease, e.g. TASK_RENEW_S=" + Math.max(1, lease.toSeconds() / 20) + ")");
        }
        if (stale != null && renew != null && stale.compareTo(renew) <= 0) {
            p.add("TASK_STALE_S=" + secs(stale) + " must be longer than TASK_RENEW_S=" + secs(renew)
                    + " (a healthy task's heartbeat is at most one renewal interval old)");
        }
        if (nodeTimeout != null && renew != null && nodeTimeout.compareTo(renew) <= 0) {
            p.add("TASK_NODE_TIMEOUT_S=" + secs(nodeTimeout) + " must be longer than TASK_RENEW_S=" + secs(renew)
                    + " (a node heartbeats once per renewal; 2x + 10 s is the default)");
        }
        if (socketTimeout != null && !socketTimeout.isZero() && !socketTimeout.isNegative()) {
            // at least 5 s (every statement must fit in it), or the node timeout when that is shorter: a
            // statement running longer than the node timeout lets the node be declared dead anyway
            Duration least = nodeTimeout == null || nodeTimeout.compareTo(Duration.ofSeconds(5)) >= 0
                    ? Duration.ofSeconds(5) : nodeTimeout;
            if (socketTimeout.compareTo(least) < 0) {
                p.add("PGDISPATCH_SOCKET_TIMEOUT_S=" + secs(socketTimeout) + " must be 0 (off) or at least "
                        + (least.equals(nodeTimeout) ? "TASK_NODE_TIMEOUT_S=" : "") + secs(least)
                        + " (every statement of a node must fit in it, a renewal of 10,000 leases included)");
            } else if (nodeTimeout != null && socketTimeout.compareTo(nodeTimeout) > 0) {
                // a renewal hung on a dead socket for longer than the node timeout lets another node's
                // reaper declare this live node dead and requeue the tasks it is still running
                p.add("PGDISPATCH_SOCKET_TIMEOUT_S=" + secs(socketTimeout) + " must not exceed TASK_NODE_TIMEOUT_S="
                        + secs(nodeTimeout) + " (a renewal stuck on a dead socket longer than that lets the reaper"
                        + " requeue this live node's tasks; use 0 (off) only with TCP keepalive tuned)");
            }
        }
        if (retryBase != null && retryMax != null && retryMax.compareTo(retryBase) < 0) {
            p.add("TASK_RETRY_MAX_S=" + secs(retryMax) + " must be at least TASK_RETRY_BASE_S=" + secs(retryBase)
                    + " (the cap of the backoff, which starts at the base)");
        }
        return p;
    }

    private static void intIn(List<String> p, String name, int value, int min, int max) {
        if (value < min || value > max) p.add(name + "=" + value + " must be a whole number from " + min + " to " + max);
    }

    /** {@code value}, or null (reported) when out of range. */
    private static Duration seconds(List<String> p, String name, Duration value, boolean zeroAllowed) {
        if (value == null) return null;
        if (value.isNegative() || (!zeroAllowed && value.isZero()) || value.toSeconds() > MAX_SECONDS) {
            p.add(name + "=" + secs(value) + " must be a " + (zeroAllowed ? "non-negative" : "positive")
                    + " whole number of seconds (at most " + MAX_SECONDS + ")");
            return null;
        }
        return value;
    }

    /** Seconds as an operator writes them; a sub-second value (tests, embedders) with its fraction. */
    private static String secs(Duration d) {
        return d.toMillis() % 1000 == 0 ? Long.toString(d.toSeconds())
                : java.math.BigDecimal.valueOf(d.toMillis(), 3).stripTrailingZeros().toPlainString();
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
        List<String> queues = r.names("TASK_QUEUES", "default");
        int concurrency = r.integer("TASK_CONCURRENCY", 32, 1, 10_000);
        Duration lease = r.seconds("TASK_LEASE_S", 600);
        Duration stale = r.seconds("TASK_STALE_S", 900);
        int maxRequeue = r.integer("TASK_MAX_REQUEUE", 3, 0, 1000);
        int reapBatch = r.integer("TASK_REAP_BATCH", 200, 1, 100_000);
        Duration renew = r.seconds("TASK_RENEW_S", 30);
        // two renewal intervals and 10 s: a node that missed one tick (heartbeat 2 x renew apart, plus two
        // ticks' run time) is not declared dead; a dead one is, within 70 s at defaults (docs/TASK_LEASES.md)
        Duration nodeTimeout = r.seconds("TASK_NODE_TIMEOUT_S", renew == null ? 70 : 2 * renew.toSeconds() + 10);
        Duration poll = r.millis("TASK_POLL_MS", 1000);
        Duration drain = r.seconds("TASK_DRAIN_S", 30, true);
        Duration retention = r.seconds("TASK_RETENTION_S", 7 * 24 * 3600);
        int maxPayload = r.integer("TASK_MAX_PAYLOAD_BYTES", 1 << 20, 2, 256 << 20);
        // a larger result fails its attempt for good (jsonb itself stops at 255 MB, and every byte is
        // held in the node's heap until it is written)
        int maxResult = r.integer("TASK_MAX_RESULT_BYTES", 1 << 20, 4, 256 << 20);
        Duration retryBase = r.seconds("TASK_RETRY_BASE_S", 1, true);
        Duration retryMax = r.seconds("TASK_RETRY_MAX_S", 3600, true);
        int pool = r.integer("PGDISPATCH_POOL_SIZE", 8, 3, 1000);
        // a node's reads give up after this (0 = never): a connection the network silently dropped
        // (no FIN, no RST: a server host gone, a NAT entry expired) would otherwise block its thread
        // until the kernel gives up, hours with default keepalive settings. Never longer than the node
        // timeout (a rule below), so by default the shorter of 60 s and TASK_NODE_TIMEOUT_S
        Duration socketTimeout = r.seconds("PGDISPATCH_SOCKET_TIMEOUT_S",
                nodeTimeout == null ? 60 : Math.min(60, nodeTimeout.toSeconds()), true);
        String httpHost = env.getOrDefault("PGDISPATCH_HTTP_HOST", "127.0.0.1");
        int httpPort;
        String rawPort = env.get("PGDISPATCH_HTTP_PORT");
        if (rawPort != null && rawPort.strip().equalsIgnoreCase("off")) {
            httpPort = HTTP_OFF;
        } else {
            httpPort = r.integer("PGDISPATCH_HTTP_PORT", 9464, 0, 65535);
        }
        // text that is no number was reported by the reader; the rules (the constructor's) see the rest
        r.problems.addAll(rules(nodeId, queues, concurrency, lease, stale, maxRequeue, reapBatch, renew,
                nodeTimeout, poll, drain, retention, maxPayload, maxResult, retryBase, retryMax, pool, socketTimeout, httpPort));
        if (!r.problems.isEmpty()) {
            throw new ConfigException(sorted(r.problems));
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

    /**
     * Short timings for tests and demos; the rules still apply to them. A socket timeout longer than the
     * new node timeout follows it down, as its default does (the shorter of 60 s and the node timeout):
     * set another one with {@link #withSocketTimeout} first (0 = off).
     */
    public DispatcherConfig withTimings(Duration leaseD, Duration renewD, Duration staleD, Duration nodeTimeoutD) {
        return copy(b -> {
            b.lease = leaseD;
            b.renewInterval = renewD;
            b.stale = staleD;
            b.nodeTimeout = nodeTimeoutD;
            if (nodeTimeoutD != null && b.socketTimeout != null && b.socketTimeout.compareTo(nodeTimeoutD) > 0) {
                b.socketTimeout = nodeTimeoutD;
            }
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

    /**
     * Turns the environment's text into values. Text that is no number is reported here (the value is
     * then null, or the default for an int, and its rules are skipped); every range and relation is a rule
     * of the constructor, reported with the text the operator typed.
     */
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
            // beyond a year either way: reported here with the text, so the rules never see an absurd value
            if (v == null || Math.abs(v) > MAX_SECONDS) {
                problems.add(name + "=" + raw + " must be a " + (zeroAllowed ? "non-negative" : "positive")
                        + " whole number of seconds (at most " + MAX_SECONDS + ")");
                return null;
            }
            return Duration.ofSeconds(v);
        }

        Duration millis(String name, long def) {
            String raw = env.get(name);
            if (raw == null) return Duration.ofMillis(def);
            Long v = parseLong(raw.strip());
            if (v == null || Math.abs(v) > 3_600_000L) {
                problems.add(name + "=" + raw + " must be a whole number of milliseconds from 10 to 3600000");
                return null;
            }
            return Duration.ofMillis(v);
        }

        /** An int; unparsable or beyond an int's range: reported, and {@code def} returned (in range). */
        int integer(String name, int def, int min, int max) {
            String raw = env.get(name);
            if (raw == null) return def;
            Long v = parseLong(raw.strip());
            if (v == null || v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
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
            boolean reported = problems.stream().anyMatch(p -> p.startsWith(name + "="));
            if (out.isEmpty() && !reported) {
                problems.add(name + "=" + raw + " must name at least one queue");
                reported = true;
            }
            // null: reported here with the text as typed, so the rules do not report it again
            return reported ? null : out;
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

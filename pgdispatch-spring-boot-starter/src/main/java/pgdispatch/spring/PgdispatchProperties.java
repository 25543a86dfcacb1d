package pgdispatch.spring;

import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code pgdispatch.*}: the node's environment variables as properties, with the same names (lower case,
 * {@code -} for {@code _}, without the {@code PGDISPATCH_} prefix: {@code TASK_LEASE_S} is
 * {@code pgdispatch.task-lease-s}) and the same rules, checked by {@code DispatcherConfig.fromEnv}.
 */
@ConfigurationProperties(prefix = "pgdispatch")
public class PgdispatchProperties {
    /** Run a node in this application (claim and run tasks); false: only the TaskClient bean. Default true. */
    private boolean enabled = true;

    /** Apply pgdispatch's pending migrations (its own location and history table) at start. Default true. */
    private boolean migrate = true;

    /** Serve the demo kinds noop, sleep, echo and fail besides the application's TaskHandler beans. Default false. */
    private boolean builtinHandlers;

    /** The PostgreSQL database of pgdispatch's tables, as DATABASE_URL (postgres://user:pass@host:5432/db or jdbc:postgresql://...). Unset: the application's own DataSource settings (spring.datasource.url, username, password). (DATABASE_URL) */
    private String databaseUrl;

    /** Schema of pgdispatch's tables, function and trigger (created by the migrations when missing). Lower-case letters, digits, _. Default public. (PGDISPATCH_SCHEMA) */
    private String schema;

    /** This node's id: unique among live nodes. Default: the host name. (DISPATCHER_NODE_ID) */
    private String dispatcherNodeId;

    /** Queues this node claims from, comma-separated. Default: default. (TASK_QUEUES) */
    private String taskQueues;

    /** Worker slots: tasks this node runs at once (1-10000). Default 32. (TASK_CONCURRENCY) */
    private Integer taskConcurrency;

    /** A claim's lease in seconds; renewed while the handler runs. Default 600. (TASK_LEASE_S) */
    private Long taskLeaseS;

    /** Seconds after which a running task whose lease expired is requeued by the reaper. Default 900. (TASK_STALE_S) */
    private Long taskStaleS;

    /** Requeues (lost leases) before a task is quarantined. Default 3. (TASK_MAX_REQUEUE) */
    private Integer taskMaxRequeue;

    /** Rows per reaper transaction. Default 200. (TASK_REAP_BATCH) */
    private Integer taskReapBatch;

    /** Seconds between lease renewals; shorter than task-lease-s. Default 30. (TASK_RENEW_S) */
    private Long taskRenewS;

    /** Seconds without a heartbeat after which a node counts as dead. Default 2 x task-renew-s + 10 s. (TASK_NODE_TIMEOUT_S) */
    private Long taskNodeTimeoutS;

    /** Milliseconds between claims when no wake-up notification arrives. Default 1000. (TASK_POLL_MS) */
    private Long taskPollMs;

    /** Seconds running tasks get to finish when the context closes; the rest are released. Default 30. (TASK_DRAIN_S) */
    private Long taskDrainS;

    /** Seconds finished tasks are kept before they are pruned. Default 604800 (7 days). (TASK_RETENTION_S) */
    private Long taskRetentionS;

    /** Largest payload TaskClient accepts, in bytes. Default 1048576. (TASK_MAX_PAYLOAD_BYTES) */
    private Integer taskMaxPayloadBytes;

    /** Largest handler result (JSON, UTF-8 bytes); a larger one fails its task for good. Default 1048576. (TASK_MAX_RESULT_BYTES) */
    private Integer taskMaxResultBytes;

    /** Seconds before the first retry of a failed attempt; doubles per attempt. Default 1. (TASK_RETRY_BASE_S) */
    private Long taskRetryBaseS;

    /** Cap of the retry delay in seconds; at least task-retry-base-s. Default 3600. (TASK_RETRY_MAX_S) */
    private Long taskRetryMaxS;

    /** Connections of the node's own pool (3-1000). Default 8. (PGDISPATCH_POOL_SIZE) */
    private Integer poolSize;

    /** Seconds after which a node's database read gives up (0 = never, else from 5 up to task-node-timeout-s). Default the shorter of 60 and task-node-timeout-s. (PGDISPATCH_SOCKET_TIMEOUT_S) */
    private Long socketTimeoutS;

    /**
     * Recurring tasks by name: {@code pgdispatch.schedules.nightly-report.cron=0 30 2 * * ?}, {@code .kind=...};
     * stored when the node starts (created, or brought to this definition; never re-enabled when an
     * operator disabled it). Besides these, every {@code pgdispatch.store.Schedule} bean.
     */
    private Map<String, ScheduleProperties> schedules = new LinkedHashMap<>();

    /** One {@code pgdispatch.schedules.<name>.*} entry; the name is the map key. */
    public static class ScheduleProperties {
        /** Cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first. Exactly one of cron and every. */
        private String cron;

        /** Fixed interval instead of a cron: 90s, 15m, 2h, 1d or PT15M (whole seconds, 1 s to 366 days). */
        private String every;

        /** Time zone of the cron expression (an IANA name such as Europe/Berlin). Default UTC. */
        private String zone = "UTC";

        /** The kind of the task each fire enqueues. Required. */
        private String kind;

        /** The task's payload, a JSON object. Default {}. */
        private String payload = "{}";

        /** The task's queue. Default default. */
        private String queue = "default";

        /** The task's priority, -1000 to 1000 (lower runs first). Default 0. */
        private int priority;

        /** The task's attempts before it fails, 1-1000. Default 5. */
        private int maxAttempts = 5;

        /** After an outage, enqueue the latest N missed fire times (1-1000). Unset: skip them all. */
        private Integer backfill;

        public String getCron() {
            return cron;
        }

        public void setCron(String v) {
            this.cron = v;
        }

        public String getEvery() {
            return every;
        }

        public void setEvery(String v) {
            this.every = v;
        }

        public String getZone() {
            return zone;
        }

        public void setZone(String v) {
            this.zone = v;
        }

        public String getKind() {
            return kind;
        }

        public void setKind(String v) {
            this.kind = v;
        }

        public String getPayload() {
            return payload;
        }

        public void setPayload(String v) {
            this.payload = v;
        }

        public String getQueue() {
            return queue;
        }

        public void setQueue(String v) {
            this.queue = v;
        }

        public int getPriority() {
            return priority;
        }

        public void setPriority(int v) {
            this.priority = v;
        }

        public int getMaxAttempts() {
            return maxAttempts;
        }

        public void setMaxAttempts(int v) {
            this.maxAttempts = v;
        }

        public Integer getBackfill() {
            return backfill;
        }

        public void setBackfill(Integer v) {
            this.backfill = v;
        }
    }

    /** Each property's name by the environment variable it stands for, for error messages. */
    static final Map<String, String> NAMES = Map.ofEntries(
            Map.entry("DATABASE_URL", "pgdispatch.database-url"),
            Map.entry("PGDISPATCH_SCHEMA", "pgdispatch.schema"),
            Map.entry("DISPATCHER_NODE_ID", "pgdispatch.dispatcher-node-id"),
            Map.entry("TASK_QUEUES", "pgdispatch.task-queues"),
            Map.entry("TASK_CONCURRENCY", "pgdispatch.task-concurrency"),
            Map.entry("TASK_LEASE_S", "pgdispatch.task-lease-s"),
            Map.entry("TASK_STALE_S", "pgdispatch.task-stale-s"),
            Map.entry("TASK_MAX_REQUEUE", "pgdispatch.task-max-requeue"),
            Map.entry("TASK_REAP_BATCH", "pgdispatch.task-reap-batch"),
            Map.entry("TASK_RENEW_S", "pgdispatch.task-renew-s"),
            Map.entry("TASK_NODE_TIMEOUT_S", "pgdispatch.task-node-timeout-s"),
            Map.entry("TASK_POLL_MS", "pgdispatch.task-poll-ms"),
            Map.entry("TASK_DRAIN_S", "pgdispatch.task-drain-s"),
            Map.entry("TASK_RETENTION_S", "pgdispatch.task-retention-s"),
            Map.entry("TASK_MAX_PAYLOAD_BYTES", "pgdispatch.task-max-payload-bytes"),
            Map.entry("TASK_MAX_RESULT_BYTES", "pgdispatch.task-max-result-bytes"),
            Map.entry("TASK_RETRY_BASE_S", "pgdispatch.task-retry-base-s"),
            Map.entry("TASK_RETRY_MAX_S", "pgdispatch.task-retry-max-s"),
            Map.entry("PGDISPATCH_POOL_SIZE", "pgdispatch.pool-size"),
            Map.entry("PGDISPATCH_SOCKET_TIMEOUT_S", "pgdispatch.socket-timeout-s")
    );

    /** The properties that are set, as the environment map {@code DispatcherConfig.fromEnv} reads. */
    Map<String, String> toEnv() {
        Map<String, String> env = new LinkedHashMap<>();
        put(env, "DATABASE_URL", databaseUrl);
        put(env, "PGDISPATCH_SCHEMA", schema);
        put(env, "DISPATCHER_NODE_ID", dispatcherNodeId);
        put(env, "TASK_QUEUES", taskQueues);
        put(env, "TASK_CONCURRENCY", taskConcurrency);
        put(env, "TASK_LEASE_S", taskLeaseS);
        put(env, "TASK_STALE_S", taskStaleS);
        put(env, "TASK_MAX_REQUEUE", taskMaxRequeue);
        put(env, "TASK_REAP_BATCH", taskReapBatch);
        put(env, "TASK_RENEW_S", taskRenewS);
        put(env, "TASK_NODE_TIMEOUT_S", taskNodeTimeoutS);
        put(env, "TASK_POLL_MS", taskPollMs);
        put(env, "TASK_DRAIN_S", taskDrainS);
        put(env, "TASK_RETENTION_S", taskRetentionS);
        put(env, "TASK_MAX_PAYLOAD_BYTES", taskMaxPayloadBytes);
        put(env, "TASK_MAX_RESULT_BYTES", taskMaxResultBytes);
        put(env, "TASK_RETRY_BASE_S", taskRetryBaseS);
        put(env, "TASK_RETRY_MAX_S", taskRetryMaxS);
        put(env, "PGDISPATCH_POOL_SIZE", poolSize);
        put(env, "PGDISPATCH_SOCKET_TIMEOUT_S", socketTimeoutS);
        return env;
    }

    private static void put(Map<String, String> env, String name, Object value) {
        if (value != null) env.put(name, value.toString());
    }

    public Map<String, ScheduleProperties> getSchedules() {
        return schedules;
    }

    public void setSchedules(Map<String, ScheduleProperties> v) {
        this.schedules = v;
    }

    public boolean isEnabled() {
        return enabled;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    public boolean isMigrate() {
        return migrate;
    }

    public void setMigrate(boolean migrate) {
        this.migrate = migrate;
    }

    public boolean isBuiltinHandlers() {
        return builtinHandlers;
    }

    public void setBuiltinHandlers(boolean builtinHandlers) {
        this.builtinHandlers = builtinHandlers;
    }

    public String getDatabaseUrl() {
        return databaseUrl;
    }

    public void setDatabaseUrl(String v) {
        this.databaseUrl = v;
    }

    public String getSchema() {
        return schema;
    }

    public void setSchema(String v) {
        this.schema = v;
    }

    public String getDispatcherNodeId() {
        return dispatcherNodeId;
    }

    public void setDispatcherNodeId(String v) {
        this.dispatcherNodeId = v;
    }

    public String getTaskQueues() {
        return taskQueues;
    }

    public void setTaskQueues(String v) {
        this.taskQueues = v;
    }

    public Integer getTaskConcurrency() {
        return taskConcurrency;
    }

    public void setTaskConcurrency(Integer v) {
        this.taskConcurrency = v;
    }

    public Long getTaskLeaseS() {
        return taskLeaseS;
    }

    public void setTaskLeaseS(Long v) {
        this.taskLeaseS = v;
    }

    public Long getTaskStaleS() {
        return taskStaleS;
    }

    public void setTaskStaleS(Long v) {
        this.taskStaleS = v;
    }

    public Integer getTaskMaxRequeue() {
        return taskMaxRequeue;
    }

    public void setTaskMaxRequeue(Integer v) {
        this.taskMaxRequeue = v;
    }

    public Integer getTaskReapBatch() {
        return taskReapBatch;
    }

    public void setTaskReapBatch(Integer v) {
        this.taskReapBatch = v;
    }

    public Long getTaskRenewS() {
        return taskRenewS;
    }

    public void setTaskRenewS(Long v) {
        this.taskRenewS = v;
    }

    public Long getTaskNodeTimeoutS() {
        return taskNodeTimeoutS;
    }

    public void setTaskNodeTimeoutS(Long v) {
        this.taskNodeTimeoutS = v;
    }

    public Long getTaskPollMs() {
        return taskPollMs;
    }

    public void setTaskPollMs(Long v) {
        this.taskPollMs = v;
    }

    public Long getTaskDrainS() {
        return taskDrainS;
    }

    public void setTaskDrainS(Long v) {
        this.taskDrainS = v;
    }

    public Long getTaskRetentionS() {
        return taskRetentionS;
    }

    public void setTaskRetentionS(Long v) {
        this.taskRetentionS = v;
    }

    public Integer getTaskMaxPayloadBytes() {
        return taskMaxPayloadBytes;
    }

    public void setTaskMaxPayloadBytes(Integer v) {
        this.taskMaxPayloadBytes = v;
    }

    public Integer getTaskMaxResultBytes() {
        return taskMaxResultBytes;
    }

    public void setTaskMaxResultBytes(Integer v) {
        this.taskMaxResultBytes = v;
    }

    public Long getTaskRetryBaseS() {
        return taskRetryBaseS;
    }

    public void setTaskRetryBaseS(Long v) {
        this.taskRetryBaseS = v;
    }

    public Long getTaskRetryMaxS() {
        return taskRetryMaxS;
    }

    public void setTaskRetryMaxS(Long v) {
        this.taskRetryMaxS = v;
    }

    public Integer getPoolSize() {
        return poolSize;
    }

    public void setPoolSize(Integer v) {
        this.poolSize = v;
    }

    public Long getSocketTimeoutS() {
        return socketTimeoutS;
    }

    public void setSocketTimeoutS(Long v) {
        this.socketTimeoutS = v;
    }
}

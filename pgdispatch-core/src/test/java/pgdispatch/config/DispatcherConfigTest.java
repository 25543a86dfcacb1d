package pgdispatch.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Settings read from an environment map: defaults, one exact line per problem, all problems at once, no secrets. */
class DispatcherConfigTest {

    /** A fixed node id, so no test depends on this machine's host name. */
    static Map<String, String> env(String... pairs) {
        Map<String, String> m = new HashMap<>(Map.of("DISPATCHER_NODE_ID", "node-a"));
        for (int i = 0; i < pairs.length; i += 2) m.put(pairs[i], pairs[i + 1]);
        return m;
    }

    @Test
    void defaultsWhenNothingIsSet() {
        DispatcherConfig c = DispatcherConfig.fromEnv(env());

        assertThat(c.lease()).isEqualTo(Duration.ofSeconds(600));
        assertThat(c.stale()).isEqualTo(Duration.ofSeconds(900));
        assertThat(c.maxRequeue()).isEqualTo(3);
        assertThat(c.reapBatch()).isEqualTo(200);
        assertThat(c.renewInterval()).isEqualTo(Duration.ofSeconds(30));
        assertThat(c.nodeTimeout()).isEqualTo(Duration.ofSeconds(70));
        assertThat(c.queues()).containsExactly("default");
        assertThat(c.databaseUrl()).isEqualTo(DatabaseUrl.parse("default", DatabaseUrl.DEFAULT));
        assertThat(c.describe()).containsEntry("TASK_LEASE_S", "600").containsEntry("TASK_STALE_S", "900")
                .containsEntry("TASK_MAX_REQUEUE", "3").containsEntry("TASK_REAP_BATCH", "200")
                .containsEntry("TASK_RENEW_S", "30").containsEntry("TASK_NODE_TIMEOUT_S", "70");
        assertThat(c.socketTimeout()).isEqualTo(Duration.ofSeconds(60));
        assertThat(c.describe()).containsEntry("PGDISPATCH_SOCKET_TIMEOUT_S", "60");
    }

    @Test
    void socketTimeoutIsOffAtZeroAndOtherwiseAtLeastFiveSeconds() {
        assertThat(DispatcherConfig.fromEnv(env("PGDISPATCH_SOCKET_TIMEOUT_S", "0")).socketTimeout()).isZero();
        assertThat(DispatcherConfig.fromEnv(env("PGDISPATCH_SOCKET_TIMEOUT_S", "70")).socketTimeout()).hasSeconds(70);
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("PGDISPATCH_SOCKET_TIMEOUT_S", "2")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("PGDISPATCH_SOCKET_TIMEOUT_S=2 must be 0 (off) or at least 5 (every statement of a node must fit"
                        + " in it, a renewal of 10,000 leases included)");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("PGDISPATCH_SOCKET_TIMEOUT_S", "1m")))
                .hasMessage("PGDISPATCH_SOCKET_TIMEOUT_S=1m must be a non-negative whole number of seconds (at most 31536000)");
    }

    @Test
    void schemaIsPublicByDefaultAndSetByPgdispatchSchemaOrTheUrl() {
        assertThat(DispatcherConfig.fromEnv(env()).databaseUrl().schema()).isEqualTo("public");
        DispatcherConfig c = DispatcherConfig.fromEnv(env("PGDISPATCH_SCHEMA", "jobs"));
        assertThat(c.databaseUrl().schema()).isEqualTo("jobs");
        assertThat(c.databaseUrl().jdbcUrl()).endsWith("currentSchema=jobs");
        assertThat(c.describe()).containsEntry("PGDISPATCH_SCHEMA", "jobs");
        assertThat(DispatcherConfig.fromEnv(env("DATABASE_URL", "postgres://h/db?currentSchema=jobs")).databaseUrl().schema())
                .isEqualTo("jobs");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("PGDISPATCH_SCHEMA", "Jobs; drop")))
                .hasMessage("PGDISPATCH_SCHEMA=Jobs; drop must be one schema name: 1-63 of lower-case letters, digits, _"
                        + " (not starting with a digit)");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("PGDISPATCH_SCHEMA", "jobs",
                "DATABASE_URL", "postgres://h/db?currentSchema=other")))
                .hasMessage("PGDISPATCH_SCHEMA=jobs contradicts DATABASE_URL's currentSchema=other: set one of them");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("DATABASE_URL", "postgres://h/db?currentSchema=a,b")))
                .hasMessage("DATABASE_URL=postgres://h/db?currentSchema=a,b currentSchema='a,b' must be one schema name:"
                        + " 1-63 of lower-case letters, digits, _ (not starting with a digit)");
    }

    @Test
    void resultBoundAndRetryBackoffComeFromTheEnvironment() {
        DispatcherConfig d = DispatcherConfig.fromEnv(env());
        assertThat(d.maxResultBytes()).isEqualTo(1 << 20);
        assertThat(d.retryBase()).hasSeconds(1);
        assertThat(d.retryMax()).hasSeconds(3600);
        assertThat(d.describe()).containsEntry("TASK_MAX_RESULT_BYTES", "1048576").containsEntry("TASK_RETRY_BASE_S", "1")
                .containsEntry("TASK_RETRY_MAX_S", "3600");

        DispatcherConfig c = DispatcherConfig.fromEnv(env("TASK_MAX_RESULT_BYTES", "5000", "TASK_RETRY_BASE_S", "5",
                "TASK_RETRY_MAX_S", "600"));
        assertThat(c.maxResultBytes()).isEqualTo(5000);
        assertThat(c.retryBase()).hasSeconds(5);
        assertThat(c.retryMax()).hasSeconds(600);

        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_RETRY_BASE_S", "60", "TASK_RETRY_MAX_S", "30")))
                .hasMessage("TASK_RETRY_MAX_S=30 must be at least TASK_RETRY_BASE_S=60 (the cap of the backoff, which starts at the base)");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_MAX_RESULT_BYTES", "1")))
                .hasMessage("TASK_MAX_RESULT_BYTES=1 must be a whole number from 4 to 268435456");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_RETRY_BASE_S", "-1")))
                .hasMessage("TASK_RETRY_BASE_S=-1 must be a non-negative whole number of seconds (at most 31536000)");
    }

    @Test
    void nodeTimeoutDefaultsToTwoRenewalsAndTenSeconds() {
        // issue 14: one missed tick is tolerated, a dead node's tasks come back sooner than with 3 x renew
        assertThat(DispatcherConfig.fromEnv(env("TASK_RENEW_S", "20")).nodeTimeout()).isEqualTo(Duration.ofSeconds(50));
    }

    @Test
    void readsEverySettingGiven() {
        DispatcherConfig c = DispatcherConfig.fromEnv(env("TASK_LEASE_S", "120", "TASK_STALE_S", "300",
                "TASK_MAX_REQUEUE", "0", "TASK_REAP_BATCH", "50", "TASK_RENEW_S", "10", "TASK_NODE_TIMEOUT_S", "45",
                "TASK_QUEUES", " emails, reports ,emails", "PGDISPATCH_HTTP_PORT", "off"));

        assertThat(c.lease()).isEqualTo(Duration.ofMinutes(2));
        assertThat(c.stale()).isEqualTo(Duration.ofMinutes(5));
        assertThat(c.maxRequeue()).isZero();
        assertThat(c.reapBatch()).isEqualTo(50);
        assertThat(c.renewInterval()).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.nodeTimeout()).isEqualTo(Duration.ofSeconds(45));
        assertThat(c.queues()).containsExactly("emails", "reports");
        assertThat(c.httpPort()).isEqualTo(DispatcherConfig.HTTP_OFF);
        assertThat(c.describe()).containsEntry("PGDISPATCH_HTTP_PORT", "off");
    }

    @Test
    void refusesNegativeLease() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_LEASE_S", "-5")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("TASK_LEASE_S=-5 must be a positive whole number of seconds (at most 31536000)");
    }

    @Test
    void refusesLeaseThatIsNotANumber() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_LEASE_S", "10m")))
                .hasMessage("TASK_LEASE_S=10m must be a positive whole number of seconds (at most 31536000)");
    }

    @Test
    void refusesRenewalAsLongAsTheLease() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_RENEW_S", "600", "TASK_LEASE_S", "600")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("TASK_RENEW_S=600 must be shorter than TASK_LEASE_S=600 (renew a few times per lease, e.g. TASK_RENEW_S=30)");
    }

    @Test
    void refusesRenewalLongerThanTheLease() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_RENEW_S", "700", "TASK_LEASE_S", "600")))
                .hasMessage("TASK_RENEW_S=700 must be shorter than TASK_LEASE_S=600 (renew a few times per lease, e.g. TASK_RENEW_S=30)");
    }

    @Test
    void refusesNodeTimeoutNotLongerThanTheRenewal() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "30")))
                .hasMessage("TASK_NODE_TIMEOUT_S=30 must be longer than TASK_RENEW_S=30 (a node heartbeats once per renewal; 2x + 10 s is the default)");
    }

    @Test
    void refusesMalformedDatabaseUrl() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("DATABASE_URL", "postgres://app:secret@/db")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=postgres://app:***@/db has no host name");
    }

    @Test
    void refusesMysqlUrl() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("DATABASE_URL", "mysql://app:secret@db/x")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=mysql://app:***@db/x must start with postgres://, postgresql:// or jdbc:postgresql://");
    }

    @Test
    void refusesBadQueueAndNodeNames() {
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_QUEUES", "ok,bad queue", "DISPATCHER_NODE_ID", "-x")))
                .hasMessage("DISPATCHER_NODE_ID=-x must be 1-100 of letters, digits, _ . : - starting with a letter or digit\n"
                        + "TASK_QUEUES=ok,bad queue has an invalid queue name 'bad queue': 1-100 of letters, digits, _ . : - starting with a letter or digit");
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_QUEUES", " , ")))
                .hasMessage("TASK_QUEUES= ,  must name at least one queue");
    }

    @Test
    void reportsEveryProblemTogether() {
        ConfigException e = catchThrowableOfType(ConfigException.class, () -> DispatcherConfig.fromEnv(env(
                "DATABASE_URL", "mysql://app:secret@db/x", "TASK_LEASE_S", "-5", "TASK_MAX_REQUEUE", "lots",
                "TASK_STALE_S", "10", "TASK_REAP_BATCH", "0")));

        List<String> expected = List.of(
                "DATABASE_URL=mysql://app:***@db/x must start with postgres://, postgresql:// or jdbc:postgresql://",
                "TASK_LEASE_S=-5 must be a positive whole number of seconds (at most 31536000)",
                "TASK_MAX_REQUEUE=lots must be a whole number from 0 to 1000",
                "TASK_REAP_BATCH=0 must be a whole number from 1 to 100000",
                "TASK_STALE_S=10 must be longer than TASK_RENEW_S=30 (a healthy task's heartbeat is at most one renewal interval old)");
        assertThat(e).isNotNull();
        assertThat(e.problems()).containsExactlyElementsOf(expected);
        assertThat(e).hasMessage(String.join("\n", expected));
    }

    @Test
    void neverPrintsThePasswordOfAValidUrl() {
        DispatcherConfig c = DispatcherConfig.fromEnv(env("DATABASE_URL", "postgres://app:Zq9-secret@db:5433/x?sslmode=require"));

        assertThat(c.databaseUrl().password()).isEqualTo("Zq9-secret");
        assertThat(c.describe()).containsEntry("DATABASE_URL", "postgresql://app:***@db:5433/x?sslmode=require");
        assertThat(c.describe().toString()).doesNotContain("Zq9-secret");
        assertThat(c.toString()).doesNotContain("Zq9-secret");
        assertThat(c.databaseUrl().jdbcUrl()).doesNotContain("Zq9-secret");
    }

    @Test
    void neverPrintsThePasswordOfAJdbcUrl() {
        DispatcherConfig c = DispatcherConfig.fromEnv(env("DATABASE_URL", "jdbc:postgresql://db/x?user=app&password=Zq9-secret"));

        assertThat(c.describe().toString()).doesNotContain("Zq9-secret");
        assertThat(c.toString()).doesNotContain("Zq9-secret");
        assertThat(c.databaseUrl().jdbcUrl()).isEqualTo("jdbc:postgresql://db:5432/x");
    }

    @Test
    void neverPrintsThePasswordWhenReportingProblems() {
        ConfigException e = catchThrowableOfType(ConfigException.class, () -> DispatcherConfig.fromEnv(env(
                "DATABASE_URL", "postgresql://app:Zq9-secret@/x", "TASK_LEASE_S", "0")));

        assertThat(e).isNotNull();
        assertThat(e.problems()).hasSize(2);
        assertThat(e.getMessage()).doesNotContain("Zq9-secret");
    }

    // ---- issue 11 item 7: every construction path passes the same rules

    private static DispatcherConfig valid() {
        return DispatcherConfig.fromEnv(env());
    }

    @Test
    void withTimingsRefusesARenewalLongerThanTheLease() {
        // a 5 s lease renewed every 60 s was accepted before: the lease ran out between renewals
        assertThatThrownBy(() -> valid().withTimings(Duration.ofSeconds(5), Duration.ofSeconds(60),
                Duration.ofSeconds(120), Duration.ofSeconds(180)))
                .isInstanceOf(ConfigException.class)
                .hasMessage("TASK_RENEW_S=60 must be shorter than TASK_LEASE_S=5 (renew a few times per lease, e.g. TASK_RENEW_S=1)");
    }

    @Test
    void recordConstructorRefusesARenewalLongerThanTheLease() {
        DispatcherConfig c = valid();
        assertThatThrownBy(() -> new DispatcherConfig(c.databaseUrl(), c.nodeId(), c.queues(), c.concurrency(),
                Duration.ofSeconds(5), c.stale(), c.maxRequeue(), c.reapBatch(), Duration.ofSeconds(60), c.nodeTimeout(),
                c.pollInterval(), c.drainTimeout(), c.retention(), c.maxPayloadBytes(), c.maxResultBytes(), c.retryBase(), c.retryMax(), c.poolSize(), c.socketTimeout(),
                c.httpHost(), c.httpPort()))
                .isInstanceOf(ConfigException.class)
                .hasMessage("TASK_RENEW_S=60 must be shorter than TASK_LEASE_S=5 (renew a few times per lease, e.g. TASK_RENEW_S=1)");
    }

    @Test
    void recordConstructorReportsEveryProblemAndEveryMissingValue() {
        DispatcherConfig c = valid();
        ConfigException e = catchThrowableOfType(ConfigException.class, () -> new DispatcherConfig(null, "bad id",
                List.of("default"), 0, c.lease(), null, -1, c.reapBatch(), c.renewInterval(), c.nodeTimeout(),
                c.pollInterval(), c.drainTimeout(), c.retention(), c.maxPayloadBytes(), c.maxResultBytes(), c.retryBase(), c.retryMax(), c.poolSize(), c.socketTimeout(),
                c.httpHost(), 70_000));

        assertThat(e).isNotNull();
        assertThat(e.problems()).containsExactly(
                "DATABASE_URL must be set (got null)",
                "DISPATCHER_NODE_ID=bad id must be 1-100 of letters, digits, _ . : - starting with a letter or digit",
                "PGDISPATCH_HTTP_PORT=70000 must be a whole number from 0 to 65535",
                "TASK_CONCURRENCY=0 must be a whole number from 1 to 10000",
                "TASK_MAX_REQUEUE=-1 must be a whole number from 0 to 1000",
                "TASK_STALE_S must be set (got null)");
    }

    @Test
    void withMethodsCheckTheRulesToo() {
        assertThatThrownBy(() -> valid().withNode("node-a", List.of("ok", "bad queue"), 4))
                .hasMessage("TASK_QUEUES=ok,bad queue has an invalid queue name 'bad queue': 1-100 of letters, digits, _ . : -"
                        + " starting with a letter or digit");
        assertThatThrownBy(() -> valid().withNode("node-a", List.of(), 4))
                .hasMessage("TASK_QUEUES= must name at least one queue");
        assertThatThrownBy(() -> valid().withPollInterval(Duration.ofMillis(5)))
                .hasMessage("TASK_POLL_MS=5 must be a whole number of milliseconds from 10 to 3600000");
        assertThatThrownBy(() -> valid().withDrainTimeout(Duration.ofSeconds(-1)))
                .hasMessage("TASK_DRAIN_S=-1 must be a non-negative whole number of seconds (at most 31536000)");
        assertThatThrownBy(() -> valid().withMaxRequeue(1001))
                .hasMessage("TASK_MAX_REQUEUE=1001 must be a whole number from 0 to 1000");
        assertThatThrownBy(() -> valid().withSocketTimeout(Duration.ofMillis(2500)))
                .hasMessage("PGDISPATCH_SOCKET_TIMEOUT_S=2.5 must be 0 (off) or at least 5 (every statement of a node must fit"
                        + " in it, a renewal of 10,000 leases included)");
    }

    @Test
    void subSecondTimingsAreAllowedThroughTheConstructorAndShownWithTheirFraction() {
        DispatcherConfig c = valid().withSocketTimeout(Duration.ZERO).withTimings(Duration.ofMillis(1500),
                Duration.ofMillis(500), Duration.ofSeconds(3), Duration.ofSeconds(2));
        assertThat(c.renewInterval()).isEqualTo(Duration.ofMillis(500));
        assertThatThrownBy(() -> c.withTimings(Duration.ofMillis(1500), Duration.ofMillis(1500), Duration.ofSeconds(3),
                Duration.ofSeconds(2)))
                .hasMessage("TASK_RENEW_S=1.5 must be shorter than TASK_LEASE_S=1.5 (renew a few times per lease, e.g. TASK_RENEW_S=1)");
    }

    @Test
    void refusesASocketTimeoutLongerThanTheNodeTimeout() {
        // a renewal hung on a dead socket for 60 s outlives a 20 s node timeout: the reaper requeues live work
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "20", "TASK_RENEW_S", "5",
                "PGDISPATCH_SOCKET_TIMEOUT_S", "60")))
                .isInstanceOf(ConfigException.class)
                .hasMessage("PGDISPATCH_SOCKET_TIMEOUT_S=60 must not exceed TASK_NODE_TIMEOUT_S=20 (a renewal stuck on a dead"
                        + " socket longer than that lets the reaper requeue this live node's tasks; use 0 (off) only with"
                        + " TCP keepalive tuned)");
        assertThat(DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "20", "TASK_RENEW_S", "5",
                "PGDISPATCH_SOCKET_TIMEOUT_S", "20")).socketTimeout()).hasSeconds(20);
        // not set: the shorter of 60 s and the node timeout; under 5 s the node timeout is the least allowed
        assertThat(DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "3", "TASK_RENEW_S", "1")).socketTimeout())
                .hasSeconds(3);
        assertThatThrownBy(() -> DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "3", "TASK_RENEW_S", "1",
                "PGDISPATCH_SOCKET_TIMEOUT_S", "2")))
                .hasMessage("PGDISPATCH_SOCKET_TIMEOUT_S=2 must be 0 (off) or at least TASK_NODE_TIMEOUT_S=3 (every"
                        + " statement of a node must fit in it, a renewal of 10,000 leases included)");
        assertThat(DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "20", "TASK_RENEW_S", "5")).socketTimeout())
                .hasSeconds(20);
        assertThat(DispatcherConfig.fromEnv(env("TASK_NODE_TIMEOUT_S", "20", "TASK_RENEW_S", "5",
                "PGDISPATCH_SOCKET_TIMEOUT_S", "0")).socketTimeout()).isZero();
        // withTimings: a longer socket timeout follows the node timeout down, as its default does
        assertThat(valid().withTimings(Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(60),
                Duration.ofSeconds(20)).socketTimeout()).hasSeconds(20);
        assertThat(valid().withSocketTimeout(Duration.ZERO).withTimings(Duration.ofSeconds(30), Duration.ofSeconds(1),
                Duration.ofSeconds(60), Duration.ofSeconds(20)).socketTimeout()).isZero();
        DispatcherConfig c = valid();
        assertThatThrownBy(() -> new DispatcherConfig(c.databaseUrl(), c.nodeId(), c.queues(), c.concurrency(), c.lease(),
                c.stale(), c.maxRequeue(), c.reapBatch(), c.renewInterval(), Duration.ofSeconds(40), c.pollInterval(),
                c.drainTimeout(), c.retention(), c.maxPayloadBytes(), c.maxResultBytes(), c.retryBase(), c.retryMax(), c.poolSize(), Duration.ofSeconds(60), c.httpHost(),
                c.httpPort()))
                .hasMessageStartingWith("PGDISPATCH_SOCKET_TIMEOUT_S=60 must not exceed TASK_NODE_TIMEOUT_S=40");
    }
}

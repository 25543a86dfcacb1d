package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * Issue 14: a renewal is the node's liveness, a heartbeat the task's progress; the renewal judges each
 * held attempt by its own cadence and ends a stuck one by its kind's policy; extensions are bounded.
 * Silences are set up by moving {@code last_heartbeat_at} back, never by waiting.
 */
class ProgressLeaseTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Duration LEASE = TaskRows.LEASE;
    private static final Duration STALE = Duration.ofMinutes(15);
    private static final StuckRules.Rule FAIL = new StuckRules.Rule(5, Duration.ofSeconds(60), false, false);
    private static final StuckRules.Rule REQUEUE = new StuckRules.Rule(5, Duration.ofSeconds(60), false, true);
    private final TaskStore store = new TaskStore(db.database());
    private UUID incarnation;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes RESTART IDENTITY");
        incarnation = TaskRows.node(db, "node-a", Duration.ZERO);
    }

    private static StuckRules rules(StuckRules.Rule r) {
        return new StuckRules(Map.of(TaskRows.KIND, r), STALE, 3);
    }

    private RenewResult renew(long id, StuckRules rules) {
        return store.renewHeld("node-a", incarnation.toString(),
                List.of(new HeldLease(id, 1, LEASE, false, Duration.ofSeconds(30), TaskRows.KIND)), rules);
    }

    /** A running attempt that reported {@code count} times at {@code cadenceMs} on average, last {@code silence} ago. */
    private long reported(int count, Double cadenceMs, Duration silence) {
        long id = TaskRows.running(db, "node-a");
        TaskRows.update(db, id, "progress_count = " + count + ", progress_interval_ms = " + cadenceMs
                + ", last_heartbeat_at = now() - " + TaskRows.interval(silence)
                + ", progress = '{\"checkpoint\": {\"page\": 7}, \"message\": \"page 7 of 20\"}'");
        return id;
    }

    private Object col(long id, String column) {
        return TaskRows.row(db, id).get(column);
    }

    @Nested
    class LivenessIsNotProgress {
        @Test
        void renewalExtendsTheLeaseButLeavesTheProgressTime() {
            long id = reported(0, null, Duration.ofMinutes(5));
            Object before = col(id, "last_heartbeat_at");

            RenewResult r = renew(id, rules(FAIL));

            assertThat(r.renewed()).containsExactly(id);
            assertThat(col(id, "last_heartbeat_at")).isEqualTo(before);
            assertThat(col(id, "renew_count")).isEqualTo(1);
            assertThat(db.count("tasks WHERE id = " + id + " AND lease_expires_at > now() + interval '9 minutes'")).isOne();
        }

        @Test
        void heartbeatMovesTheProgressTimeAndLearnsTheCadence() {
            long id = reported(0, null, Duration.ofSeconds(30));
            assertThat(store.heartbeat("node-a", id, 1, LEASE, null, "first")).isTrue();
            assertThat(col(id, "progress_count")).isEqualTo(1);
            assertThat(col(id, "progress_interval_ms")).as("claim to first report is setup, not cadence").isNull();

            TaskRows.update(db, id, "last_heartbeat_at = now() - interval '10 seconds'");
            assertThat(store.heartbeat("node-a", id, 1, LEASE, null, "second")).isTrue();
            assertThat((Double) col(id, "progress_interval_ms")).isBetween(9_900.0, 10_500.0);

            TaskRows.update(db, id, "last_heartbeat_at = now() - interval '20 seconds'");
            assertThat(store.heartbeat("node-a", id, 1, LEASE, "{\"page\": 3}", "third")).isTrue();
            // moving average: 0.7 x 10 s + 0.3 x 20 s
            assertThat((Double) col(id, "progress_interval_ms")).isBetween(12_900.0, 13_500.0);
            assertThat(col(id, "progress_count")).isEqualTo(3);
            assertThat(db.count("tasks WHERE id = " + id + " AND last_heartbeat_at > now() - interval '1 second'")).isOne();
        }

        @Test
        void claimStartsANewAttemptsCadence() {
            long id = TaskRows.pending(db);
            TaskRows.update(db, id, "progress_count = 9, progress_interval_ms = 1000, renew_count = 4, extension_count = 2,"
                    + " quiet_until = now() + interval '1 hour', last_heartbeat_at = now() - interval '1 day'");
            store.claimDue(new ClaimRequest("node-a", List.of(TaskRows.QUEUE), Map.of(TaskRows.KIND, LEASE), 1, 3));

            Map<String, Object> row = TaskRows.row(db, id);
            assertThat(row).containsEntry("progress_count", 0).containsEntry("renew_count", 0)
                    .containsEntry("extension_count", 0).containsEntry("progress_interval_ms", null)
                    .containsEntry("quiet_until", null);
            assertThat(db.count("tasks WHERE id = " + id + " AND last_heartbeat_at > now() - interval '1 second'")).isOne();
        }
    }

    @Nested
    class Stuck {
        @Test
        void handlerSilentPastFiveTimesItsCadenceFailsTheAttemptWithBackOff() {
            long id = reported(3, 14_000.0, Duration.ofSeconds(75)); // bound 5 x 14 s = 70 s (above the 60 s floor)

            RenewResult r = renew(id, rules(FAIL));

            assertThat(r.renewed()).isEmpty();
            assertThat(r.lost()).isEmpty();
            assertThat(r.stuck()).containsOnlyKeys(id);
            assertThat(r.stuck().get(id)).startsWith("stuck: no progress reported for 75").contains("bound 70.0 s")
                    .contains("cadence 14.0 s").contains("last message: page 7 of 20");
            Map<String, Object> row = TaskRows.row(db, id);
            assertThat(row).containsEntry("status", "pending").containsEntry("owner_id", null);
            assertThat(db.count("tasks WHERE id = " + id + " AND run_at > now() + interval '25 seconds'"))
                    .as("retried after its back-off").isOne();
            List<Map<String, Object>> ev = db.rows("SELECT detail->>'silence_ms' AS silence, detail->>'cadence_ms' AS cadence,"
                    + " detail->>'last_message' AS msg, detail->>'policy' AS policy, detail->>'status' AS status"
                    + " FROM task_events WHERE event = 'stuck' AND task_id = " + id);
            assertThat(ev).hasSize(1);
            assertThat(Long.parseLong((String) ev.get(0).get("silence"))).isBetween(75_000L, 77_000L);
            assertThat(ev.get(0)).containsEntry("cadence", "14000").containsEntry("msg", "page 7 of 20")
                    .containsEntry("policy", "fail_attempt").containsEntry("status", "pending");
            assertThat(db.count("task_events WHERE event = 'lease_lost'")).isZero();
        }

        @Test
        void floorProtectsAFastReporterFromAShortPause() {
            long id = reported(5, 1_000.0, Duration.ofSeconds(30)); // 5 x 1 s = 5 s, but the floor is 60 s

            assertThat(renew(id, rules(FAIL)).renewed()).containsExactly(id);
            assertThat(col(id, "status")).isEqualTo("running");
        }

        @Test
        void handlerWithinItsCadenceIsNotStuck() {
            long id = reported(3, 20_000.0, Duration.ofSeconds(90)); // bound 100 s

            RenewResult r = renew(id, rules(FAIL));

            assertThat(r.renewed()).containsExactly(id);
            assertThat(r.stuck()).isEmpty();
            assertThat(db.count("task_events WHERE event = 'stuck'")).isZero();
        }

        @Test
        void handlerThatNeverReportedIsNotJudgedUnlessItsKindOptsIn() {
            long id = reported(0, null, Duration.ofHours(2));

            assertThat(renew(id, rules(FAIL)).renewed()).containsExactly(id);
            assertThat(renew(id, rules(new StuckRules.Rule(5, Duration.ofSeconds(60), true, false))).stuck())
                    .as("opted in: judged by TASK_STALE_S").containsOnlyKeys(id);
        }

        @Test
        void handlerThatReportedOnceIsJudgedByTheStaleBound() {
            long quiet = reported(1, null, Duration.ofMinutes(14));
            assertThat(renew(quiet, rules(FAIL)).renewed()).containsExactly(quiet);
            long silent = reported(1, null, Duration.ofMinutes(16));
            assertThat(renew(silent, rules(FAIL)).stuck()).containsOnlyKeys(silent);
        }

        @Test
        void kindWithoutARuleIsNeverJudged() {
            long id = reported(3, 1_000.0, Duration.ofHours(1));

            assertThat(renew(id, StuckRules.NONE).renewed()).containsExactly(id);
        }

        @Test
        void lastAttemptStuckFailsTheTask() {
            long id = reported(3, 1_000.0, Duration.ofMinutes(2));
            TaskRows.update(db, id, "attempts = 5, max_attempts = 5");

            renew(id, rules(FAIL));

            assertThat(TaskRows.row(db, id)).containsEntry("status", "failed").containsEntry("owner_id", "node-a");
            assertThat((String) col(id, "last_error")).startsWith("stuck: ");
        }

        @Test
        void requeuePolicyRequeuesWithinTheBudgetThenQuarantines() {
            long id = reported(3, 1_000.0, Duration.ofMinutes(2));
            renew(id, rules(REQUEUE));
            assertThat(TaskRows.row(db, id)).containsEntry("status", "pending").containsEntry("requeue_count", 1);
            assertThat(db.count("tasks WHERE id = " + id + " AND run_at <= now()")).isOne();

            long spent = reported(3, 1_000.0, Duration.ofMinutes(2));
            TaskRows.update(db, spent, "requeue_count = 3");
            renew(spent, rules(REQUEUE));
            assertThat(TaskRows.row(db, spent)).containsEntry("status", "quarantined");
        }

        @Test
        void grantedExtensionKeepsASilentHandlerFromBeingJudged() {
            long id = reported(3, 1_000.0, Duration.ofMinutes(2));
            assertThat(store.extendLease("node-a", id, 1, Duration.ofMinutes(30), "bulk copy", 2))
                    .isEqualTo(TaskStore.Extension.GRANTED);

            assertThat(renew(id, rules(FAIL)).renewed()).containsExactly(id);
            TaskRows.update(db, id, "quiet_until = now() - interval '1 second'");
            assertThat(renew(id, rules(FAIL)).stuck()).containsOnlyKeys(id);
        }

        @Test
        void finishedHandlerWhoseOutcomeIsPendingIsNotJudged() {
            long id = reported(3, 1_000.0, Duration.ofMinutes(2));

            RenewResult r = store.renewHeld("node-a", incarnation.toString(),
                    List.of(new HeldLease(id, 1, LEASE, true, Duration.ZERO, TaskRows.KIND)), rules(FAIL));

            assertThat(r.renewed()).containsExactly(id);
        }

        @Test
        void reaperLeavesALiveNodesSilentHandlerAlone() {
            // before V10 a renewal refreshed last_heartbeat_at, so only a dead owner's rows had an old one;
            // now it is the handler's progress time and the owner, alive, judges it (rule above)
            long id = reported(0, null, Duration.ofHours(2));

            assertThat(store.planStale(STALE, Duration.ofSeconds(90), 3, 10)).isEmpty();
            TaskRows.update(db, id, "owner_id = 'node-unregistered'");
            assertThat(store.planStale(STALE, Duration.ofSeconds(90), 3, 10)).extracting(StaleTask::id).containsExactly(id);
        }
    }

    @Nested
    class Extensions {
        @Test
        void atMostTheMaximumPerAttemptEachAnEvent() {
            long id = reported(0, null, Duration.ZERO);
            assertThat(store.extendLease("node-a", id, 1, Duration.ofMinutes(20), "import", 2)).isEqualTo(TaskStore.Extension.GRANTED);
            assertThat(store.extendLease("node-a", id, 1, Duration.ofMinutes(20), "import", 2)).isEqualTo(TaskStore.Extension.GRANTED);
            Object expires = col(id, "lease_expires_at");

            assertThat(store.extendLease("node-a", id, 1, Duration.ofMinutes(20), "import", 2)).isEqualTo(TaskStore.Extension.REFUSED);

            assertThat(col(id, "extension_count")).isEqualTo(2);
            assertThat(col(id, "lease_expires_at")).isEqualTo(expires);
            assertThat(db.count("task_events WHERE event = 'lease_extended' AND task_id = " + id)).isEqualTo(2);
            assertThat(db.rows("SELECT detail->>'extensions' AS n, detail->>'reason' AS reason FROM task_events"
                    + " WHERE event = 'extension_refused' AND task_id = " + id))
                    .containsExactly(Map.of("n", "2", "reason", "import"));
            assertThat(db.count("tasks WHERE id = " + id + " AND lease_expires_at > now() + interval '19 minutes'"
                    + " AND quiet_until > now() + interval '19 minutes'")).isOne();
        }

        @Test
        void extensionOfALostLeaseChangesNothing() {
            long id = reported(0, null, Duration.ZERO);
            Map<String, Object> before = TaskRows.row(db, id);

            assertThat(store.extendLease("node-a", id, 2, Duration.ofMinutes(20), "stale token", 2))
                    .isEqualTo(TaskStore.Extension.LEASE_LOST);
            assertThat(store.extendLease("node-b", id, 1, Duration.ofMinutes(20), "other owner", 2))
                    .isEqualTo(TaskStore.Extension.LEASE_LOST);

            assertThat(TaskRows.row(db, id)).isEqualTo(before);
            assertThat(db.count("task_events")).isZero();
        }

        @Test
        void renewalNeverShortensAnExtendedLease() {
            long id = reported(0, null, Duration.ZERO);
            store.extendLease("node-a", id, 1, Duration.ofHours(2), "long step", 2);

            renew(id, rules(FAIL));

            assertThat(db.count("tasks WHERE id = " + id + " AND lease_expires_at > now() + interval '119 minutes'")).isOne();
        }
    }
}

package pgdispatch.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.zone.ZoneOffsetTransition;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.metrics.DispatchMetrics;
import pgdispatch.store.Database;
import pgdispatch.store.Schedule;
import pgdispatch.store.ScheduleStore;
import pgdispatch.testing.TestDatabase;

/**
 * The Scheduler on a real PostgreSQL: placing, firing on time, several schedulers racing over many fire
 * times (each with its own pool), a scheduler killed in the middle of a step, the missed-fire policies
 * after an outage (simulated by moving next_fire_at back, not by waiting), and daylight saving.
 */
class SchedulerTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final DispatchMetrics metrics = new DispatchMetrics(registry);
    private ScheduleStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, schedules, schedule_fires");
        store = new ScheduleStore(db.database().dataSource());
    }

    private Scheduler scheduler(ScheduleStore s, String node) {
        return new Scheduler(Scheduler.Config.defaults(Duration.ofDays(7), node), s, metrics);
    }

    private Scheduler scheduler() {
        return scheduler(store, "node-a");
    }

    private void add(Schedule s) {
        assertThat(store.add(s, true, "test")).isTrue();
    }

    /** The fire times enqueued for {@code name} (the tasks' run_at), in order. */
    private List<Instant> fired(String name) {
        return db.rows("SELECT t.run_at FROM tasks t WHERE t.idempotency_key LIKE 'schedule:" + name + "@%' ORDER BY t.run_at")
                .stream().map(r -> ((java.sql.Timestamp) r.get("run_at")).toInstant()).toList();
    }

    @Nested
    class OnTime {
        @Test
        void aNewScheduleIsPlacedAtItsFirstFireTimeAfterNowAndEnqueuesNothing() {
            add(Schedule.every("tick", Duration.ofHours(1), "report"));
            Scheduler.Result r = scheduler().runOnce();
            assertThat(r.enqueued()).isZero();
            assertThat(db.count("schedules WHERE next_fire_at BETWEEN now() + interval '59 minutes' AND now() + interval '1 hour'")).isOne();
            assertThat(db.count("tasks")).isZero();
            // an hour away: the sleep is capped by the safety interval (shorter while LISTEN is down)
            assertThat(r.untilNext()).isEqualTo(Scheduler.DEFAULT_NOTIFIED_WAIT);
        }

        @Test
        void aDueFireTimeEnqueuesOneTaskWithTheScheduleDefinitionKeyAndHistory() {
            add(Schedule.every("tick", Duration.ofHours(1), "report").payload("{\"a\": 1}").queue("reports").priority(-5)
                    .maxAttempts(2));
            db.exec("UPDATE schedules SET next_fire_at = date_trunc('second', now()) - interval '10 seconds'");
            Instant due = ((OffsetDateTime) store.find("tick").orElseThrow().nextFireAt()).toInstant();

            Scheduler.Result r = scheduler().runOnce();

            assertThat(r.fired()).isOne();
            Map<String, Object> t = db.rows("SELECT * FROM tasks").get(0);
            assertThat(t).containsEntry("kind", "report").containsEntry("queue", "reports").containsEntry("priority", -5)
                    .containsEntry("max_attempts", 2).containsEntry("status", "pending")
                    .containsEntry("idempotency_key", "schedule:tick@" + due);
            assertThat(t.get("payload").toString()).isEqualTo("{\"a\": 1}");
            assertThat(db.rows("SELECT action, task_id, node_id FROM schedule_fires")).containsExactly(
                    Map.of("action", "fired", "task_id", t.get("id"), "node_id", "node-a"));
            assertThat(db.count("schedules WHERE next_fire_at = '" + due.plus(Duration.ofHours(1)) + "' AND last_fired_at = '" + due + "'"))
                    .isOne();
            assertThat(scheduler().runOnce().enqueued()).as("a second run finds nothing due").isZero();
            assertThat(registry.get("pgdispatch.schedule.fires").tag("schedule", "tick").tag("how", "fired").counter().count())
                    .isEqualTo(1);
        }

        @Test
        void aDisabledScheduleDoesNotFireAndReEnablingStartsFromNow() {
            add(Schedule.every("tick", Duration.ofMinutes(1), "report"));
            db.exec("UPDATE schedules SET next_fire_at = now() - interval '10 seconds'");
            assertThat(store.setEnabled("tick", false, "ops")).contains(true);
            assertThat(store.setEnabled("tick", false, "ops")).contains(false);
            assertThat(scheduler().runOnce().enqueued()).isZero();
            assertThat(store.setEnabled("tick", true, "ops")).contains(true);
            assertThat(scheduler().runOnce().enqueued()).isZero();
            assertThat(db.count("schedules WHERE next_fire_at > now()")).isOne();
            assertThat(store.setEnabled("nope", true, "ops")).isEmpty();
        }

        @Test
        void aScheduleInsertedWithPlainSqlIsPlacedThenFires() {
            // docs/SQL_CONTRACT.md#schedules: the columns a producer sets, next_fire_at left NULL
            db.exec("INSERT INTO schedules (name, cron, time_zone, kind, payload, changed_by)"
                    + " VALUES ('sql-made', '0 * * * * *', 'Europe/Berlin', 'report', '{\"x\": 1}', 'psql')");
            assertThat(scheduler().runOnce().enqueued()).isZero();
            assertThat(db.count("schedules WHERE next_fire_at > now() AND next_fire_at <= now() + interval '1 minute'"
                    + " AND extract(second FROM next_fire_at) = 0")).isOne();
            db.exec("UPDATE schedules SET next_fire_at = next_fire_at - interval '1 minute'");
            assertThat(scheduler().runOnce().fired()).isOne();
            assertThat(db.count("tasks WHERE kind = 'report' AND payload = '{\"x\": 1}'")).isOne();
        }

        @Test
        void theSchemaRefusesWhatItCanCheck() {
            for (String bad : List.of(
                    "('n', '* * *', NULL, 'UTC', 'k', 'skip', 0)",            // 3 fields
                    "('n', NULL, NULL, 'UTC', 'k', 'skip', 0)",               // neither cron nor every
                    "('n', '* * * * *', 60, 'UTC', 'k', 'skip', 0)",          // both
                    "('n', NULL, 0, 'UTC', 'k', 'skip', 0)",                  // every below 1 s
                    "('n', NULL, 60, 'UTC+5', 'k', 'skip', 0)",               // an offset, not a zone name
                    "('n', NULL, 60, 'UTC', 'k', 'skip', 3)",                 // backfill_max without backfill
                    "('n', NULL, 60, 'UTC', 'k', 'backfill', 0)",             // backfill of none
                    "('-n', NULL, 60, 'UTC', 'k', 'skip', 0)")) {
                assertThatThrownBy(() -> db.exec("INSERT INTO schedules (name, cron, every_s, time_zone, kind, missed, backfill_max)"
                        + " VALUES " + bad)).as(bad).hasMessageContaining("violates check constraint");
            }
            assertThatThrownBy(() -> db.exec("INSERT INTO schedules (name, every_s, time_zone, kind) VALUES ('n', 60, 'Nowhere/City', 'k')"))
                    .hasMessageContaining("time zone \"Nowhere/City\" not recognized");
            assertThatThrownBy(() -> db.exec("INSERT INTO schedules (name, every_s, kind, payload) VALUES ('n', 60, 'k', '[1]')"))
                    .hasMessageContaining("schedules_payload_check");
        }

        @Test
        void aRowThatJavaCannotReadFailsAloneAndTheOthersFire() {
            // passes the schema's field count, but cron-utils refuses '?' in a 5-field expression
            db.exec("INSERT INTO schedules (name, cron, kind, next_fire_at) VALUES ('bad', '0 0 ? * *', 'k', now() - interval '5 seconds')");
            add(Schedule.every("good", Duration.ofHours(1), "k"));
            db.exec("UPDATE schedules SET next_fire_at = now() - interval '5 seconds' WHERE name = 'good'");
            Scheduler.Result r = scheduler().runOnce();
            assertThat(r.errors()).isOne();
            assertThat(r.fired()).isOne();
            assertThat(r.untilNext()).isEqualTo(Scheduler.DEFAULT_MAX_WAIT);
            assertThat(registry.get("pgdispatch.scheduler.errors").counter().count()).isEqualTo(1);
        }

        @Test
        void runNowEnqueuesOneTaskOutsideTheTimingAndRecordsIt() {
            add(Schedule.cron("nightly", "0 3 * * *", "report"));
            scheduler().runOnce();
            Object next = store.find("nightly").orElseThrow().nextFireAt();
            long id = store.runNow("nightly", "cli:ops").orElseThrow();
            assertThat(db.rows("SELECT action, task_id, node_id FROM schedule_fires"))
                    .containsExactly(Map.of("action", "run_now", "task_id", id, "node_id", "cli:ops"));
            assertThat(store.find("nightly").orElseThrow().nextFireAt()).isEqualTo(next);
            assertThat(store.runNow("nope", "cli:ops")).isEmpty();
        }
    }

    @Nested
    class ExactlyOnce {
        @Test
        void severalSchedulersRacingOverManyFireTimesEnqueueEachExactlyOnce() throws Exception {
            add(Schedule.every("every-second", Duration.ofSeconds(1), "k"));
            add(Schedule.cron("cron-second", "* * * * * *", "k"));
            add(Schedule.every("outage", Duration.ofSeconds(1), "k").backfill(20));
            db.exec("UPDATE schedules SET next_fire_at = date_trunc('second', now()) - interval '50 seconds'");
            db.exec("UPDATE schedules SET next_fire_at = date_trunc('second', now()) - interval '200 seconds' WHERE name = 'outage'");
            int n = 4;
            List<Database> pools = new ArrayList<>();
            ExecutorService threads = Executors.newFixedThreadPool(n);
            try {
                CyclicBarrier start = new CyclicBarrier(n);
                List<Future<Scheduler.Result>> results = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    Database own = Database.open(db.url(), 2, "race-" + i);
                    pools.add(own);
                    Scheduler s = scheduler(new ScheduleStore(own.dataSource()), "node-" + i);
                    results.add(threads.submit(() -> {
                        start.await(10, TimeUnit.SECONDS);
                        return s.runOnce();
                    }));
                }
                int enqueued = 0, lost = 0, conflicts = 0, errors = 0;
                for (Future<Scheduler.Result> f : results) {
                    Scheduler.Result r = f.get(60, TimeUnit.SECONDS);
                    enqueued += r.enqueued();
                    lost += r.lostRaces();
                    conflicts += r.conflicts();
                    errors += r.errors();
                }
                assertThat(errors).isZero();
                assertThat(conflicts).as("no scheduler found its fire time taken: the compare-and-set decided").isZero();
                assertThat(lost).as("the schedulers did race").isPositive();
                assertThat(enqueued).isEqualTo(db.count("tasks"));
                for (String name : List.of("every-second", "cron-second")) {
                    List<Instant> times = fired(name);
                    assertThat(times).hasSizeGreaterThanOrEqualTo(50).doesNotHaveDuplicates();
                    assertThat(Duration.between(times.get(0), times.getLast()).toSeconds()).as(name + ": no gap")
                            .isEqualTo(times.size() - 1);
                }
                List<Instant> outage = fired("outage");
                assertThat(outage).doesNotHaveDuplicates();
                // 200 s behind: 140 missed (older than 60 s), the latest 20 backfilled; the last 60 s on time
                // 200 s behind: about 140 missed (older than 60 s), the latest 20 of them backfilled, the
                // rest skipped in one decision; then the last 60 s on time: together, every second once
                Map<String, Object> skip = db.rows("SELECT fire_at, skipped_until, skipped_count FROM schedule_fires"
                        + " WHERE schedule = 'outage' AND action = 'skipped'").get(0);
                assertThat(db.count("schedule_fires WHERE schedule = 'outage' AND action = 'backfilled'")).isEqualTo(20);
                Instant skippedUntil = ((java.sql.Timestamp) skip.get("skipped_until")).toInstant();
                assertThat(outage.get(0)).isEqualTo(skippedUntil.plusSeconds(1));
                assertThat(((Number) skip.get("skipped_count")).longValue()).isEqualTo(
                        Duration.between(((java.sql.Timestamp) skip.get("fire_at")).toInstant(), skippedUntil).toSeconds() + 1);
                assertThat(Duration.between(outage.get(0), outage.getLast()).toSeconds()).isEqualTo(outage.size() - 1);
                assertThat(db.count("tasks t JOIN schedule_fires f ON f.task_id = t.id")).isEqualTo(db.count("tasks"));
            } finally {
                threads.shutdownNow();
                pools.forEach(Database::close);
            }
        }

        @Test
        void aSchedulerKilledInTheMiddleOfAStepLeavesTheFireTimeToAnother() throws Exception {
            add(Schedule.every("tick", Duration.ofHours(1), "k"));
            db.exec("UPDATE schedules SET next_fire_at = date_trunc('second', now()) - interval '5 seconds'");
            Instant due = store.find("tick").orElseThrow().nextFireAt().toInstant();
            ExecutorService other = Executors.newSingleThreadExecutor();
            try (Connection victim = java.sql.DriverManager.getConnection(db.url().jdbcUrl(), db.url().user(), db.url().password())) {
                victim.setAutoCommit(false);
                try (Statement st = victim.createStatement()) {
                    // what a node's step does before its commit: the compare-and-set, then the task
                    assertThat(st.executeUpdate("UPDATE schedules SET next_fire_at = next_fire_at + interval '1 hour'"
                            + " WHERE name = 'tick' AND next_fire_at = '" + due + "'")).isOne();
                    st.executeUpdate("INSERT INTO tasks (kind, idempotency_key) VALUES ('k', 'schedule:tick@" + due + "')");
                }
                Future<Scheduler.Result> survivor = other.submit(() -> scheduler(store, "node-b").runOnce());
                // the survivor waits on the row the victim holds
                await().atMost(10, TimeUnit.SECONDS).until(() -> db.count(
                        "pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") > 0);
                victim.abort(Runnable::run); // the node dies: its connection drops, its transaction rolls back
                Scheduler.Result r = survivor.get(30, TimeUnit.SECONDS);
                assertThat(r.fired()).isOne();
                assertThat(fired("tick")).containsExactly(due);
                assertThat(db.rows("SELECT node_id FROM schedule_fires")).containsExactly(Map.of("node_id", "node-b"));
            } finally {
                other.shutdownNow();
            }
        }
    }

    @Nested
    class Missed {
        // hourly, 10 h 30 min behind: fire times at -10:30, -9:30, ..., -0:30 (11), all older than 60 s
        private void outage(Schedule s) {
            add(s);
            db.exec("UPDATE schedules SET next_fire_at = date_trunc('second', now()) - interval '10 hours 30 minutes'");
        }

        @Test
        void skipEnqueuesNoneAndRecordsTheRangeAndCount() {
            outage(Schedule.every("hourly", Duration.ofHours(1), "k"));
            Instant first = store.find("hourly").orElseThrow().nextFireAt().toInstant();
            Scheduler.Result r = scheduler().runOnce();
            assertThat(r.enqueued()).isZero();
            assertThat(r.skipped()).isEqualTo(11);
            assertThat(db.count("tasks")).isZero();
            List<Map<String, Object>> h = db.rows("SELECT action, fire_at, skipped_until, skipped_count FROM schedule_fires");
            assertThat(h).hasSize(1);
            assertThat(h.get(0)).containsEntry("action", "skipped").containsEntry("skipped_count", 11L);
            assertThat(((java.sql.Timestamp) h.get(0).get("fire_at")).toInstant()).isEqualTo(first);
            assertThat(((java.sql.Timestamp) h.get(0).get("skipped_until")).toInstant()).isEqualTo(first.plus(Duration.ofHours(10)));
            assertThat(store.find("hourly").orElseThrow().nextFireAt().toInstant()).isEqualTo(first.plus(Duration.ofHours(11)));
            assertThat(registry.get("pgdispatch.schedule.skipped").tag("schedule", "hourly").counter().count()).isEqualTo(11);
            assertThat(scheduler().runOnce().skipped()).isZero();
        }

        @Test
        void backfillEnqueuesTheLatestNOldestFirstAndSkipsTheRest() {
            outage(Schedule.every("hourly", Duration.ofHours(1), "k").backfill(3));
            Instant first = store.find("hourly").orElseThrow().nextFireAt().toInstant();
            Scheduler.Result r = scheduler().runOnce();
            assertThat(r.backfilled()).isEqualTo(3);
            assertThat(r.skipped()).isEqualTo(8);
            assertThat(fired("hourly")).containsExactly(first.plus(Duration.ofHours(8)), first.plus(Duration.ofHours(9)),
                    first.plus(Duration.ofHours(10)));
            assertThat(db.rows("SELECT action, skipped_count FROM schedule_fires ORDER BY fire_at")).extracting(m -> m.get("action"))
                    .containsExactly("skipped", "backfilled", "backfilled", "backfilled");
            assertThat(db.count("schedule_fires WHERE action = 'skipped' AND skipped_count = 8 AND skipped_until = '"
                    + first.plus(Duration.ofHours(7)) + "'")).isOne();
            assertThat(store.find("hourly").orElseThrow().nextFireAt().toInstant()).isEqualTo(first.plus(Duration.ofHours(11)));
        }

        @Test
        void backfillLargerThanTheOutageEnqueuesEveryMissedTime() {
            outage(Schedule.every("hourly", Duration.ofHours(1), "k").backfill(50));
            Scheduler.Result r = scheduler().runOnce();
            assertThat(r.backfilled()).isEqualTo(11);
            assertThat(r.skipped()).isZero();
            assertThat(db.count("schedule_fires WHERE action = 'skipped'")).isZero();
        }
    }

    @Nested
    class DaylightSaving {
        /**
         * A daily 02:30 Europe/Berlin schedule backfilled over the last spring-forward and fall-back nights
         * (found from the zone rules, so the test holds whatever the date): one task on each of those
         * days, at 03:30 CEST on the spring day (02:30 did not exist) and at the first 02:30 on the fall day.
         */
        @Test
        void aDailyScheduleFiresOnceOnBothTransitionDays() {
            ZoneId berlin = ZoneId.of("Europe/Berlin");
            ZoneOffsetTransition spring = null, fall = null;
            Instant at = Instant.now();
            while (spring == null || fall == null) {
                ZoneOffsetTransition t = berlin.getRules().previousTransition(at);
                if (t.isGap() && spring == null) spring = t;
                if (t.isOverlap() && fall == null) fall = t;
                at = t.getInstant();
            }
            LocalDate springDay = spring.getDateTimeBefore().toLocalDate();
            LocalDate fallDay = fall.getDateTimeBefore().toLocalDate();
            java.time.ZoneOffset beforeFall = fall.getOffsetBefore();
            LocalDate from = (springDay.isBefore(fallDay) ? springDay : fallDay).minusDays(2);
            add(Schedule.cron("nightly", "30 2 * * *", "k").zone("Europe/Berlin").backfill(1000));
            Instant first = ZonedDateTime.of(from, LocalTime.of(2, 30), berlin).toInstant();
            db.exec("UPDATE schedules SET next_fire_at = '" + first + "'");

            Scheduler.Result r = scheduler().runOnce();

            List<ZonedDateTime> times = fired("nightly").stream().map(i -> i.atZone(berlin)).toList();
            assertThat(r.backfilled()).isEqualTo(times.size());
            assertThat(times).extracting(ZonedDateTime::toLocalDate).doesNotHaveDuplicates();
            // one per day from the first on, the last one at most a day ago
            assertThat(times.getLast().toLocalDate()).isAfterOrEqualTo(LocalDate.now(berlin).minusDays(1));
            assertThat(times).hasSize((int) (times.getLast().toLocalDate().toEpochDay() - from.toEpochDay() + 1));
            assertThat(times).filteredOn(z -> z.toLocalDate().equals(springDay)).singleElement()
                    .satisfies(z -> assertThat(z.toLocalTime()).isEqualTo(LocalTime.of(3, 30)));
            assertThat(times).filteredOn(z -> z.toLocalDate().equals(fallDay)).singleElement()
                    .satisfies(z -> assertThat(z.getOffset()).isEqualTo(beforeFall));
            assertThat(times).filteredOn(z -> !z.toLocalDate().equals(springDay))
                    .allSatisfy(z -> assertThat(z.toLocalTime()).isEqualTo(LocalTime.of(2, 30)));
        }
    }
}

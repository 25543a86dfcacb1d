package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Schedule;
import pgdispatch.store.ScheduleStore;
import pgdispatch.testing.TestDatabase;

/**
 * Schedules declared in code on live nodes: three nodes declare the same every-second schedule, one is
 * killed (halted: no clean-up) part-way, the others go on; every fire time from the first to the last is
 * enqueued exactly once and the tasks run. Then what a declaration does to a stored schedule.
 */
class ScheduleNodesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final List<Dispatcher> started = new ArrayList<>();

    private static final TaskHandler TICK = new TaskHandler() {
        @Override
        public String kind() {
            return "tick";
        }

        @Override
        public Object handle(TaskContext c) {
            return null;
        }
    };

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, schedules, schedule_fires");
    }

    @AfterEach
    void stopAll() {
        started.forEach(Dispatcher::halt);
        await().atMost(5, TimeUnit.SECONDS).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(Thread::isAlive).extracting(Thread::getName).noneMatch(n -> n.startsWith("pgdispatch-")));
    }

    private Dispatcher node(String id, Schedule... schedules) throws InterruptedException {
        DispatcherConfig cfg = db.config().withNode(id, List.of("default"), 2).withDrainTimeout(Duration.ofMillis(500));
        Dispatcher d = Dispatcher.builder(cfg).handler(TICK).schedules(List.of(schedules)).build();
        started.add(d);
        return d.start();
    }

    private List<Instant> fireTimes() {
        return db.rows("SELECT run_at FROM tasks WHERE idempotency_key LIKE 'schedule:tick@%' ORDER BY run_at").stream()
                .map(r -> ((java.sql.Timestamp) r.get("run_at")).toInstant()).toList();
    }

    @Test
    void threeNodesFireEachSecondOnceAndAKilledNodeMissesNothing() throws Exception {
        Schedule tick = Schedule.every("tick", Duration.ofSeconds(1), "tick");
        Dispatcher a = node("node-a", tick);
        node("node-b", tick);
        node("node-c", tick);
        await().atMost(20, TimeUnit.SECONDS).until(() -> db.count("schedule_fires WHERE node_id = 'node-a'") >= 1
                && db.count("schedule_fires") >= 4);
        a.halt();
        long atKill = db.count("schedule_fires");
        await().atMost(20, TimeUnit.SECONDS).until(() -> db.count("schedule_fires") >= atKill + 5);
        List<Instant> times = fireTimes();
        assertThat(times).doesNotHaveDuplicates();
        assertThat(Duration.between(times.get(0), times.getLast()).toSeconds()).as("no fire time missed").isEqualTo(times.size() - 1);
        assertThat(db.count("schedule_fires WHERE node_id IN ('node-b', 'node-c') AND fire_at > (SELECT max(fire_at)"
                + " FROM schedule_fires WHERE node_id = 'node-a')")).isPositive();
        assertThat(db.count("schedule_fires WHERE action <> 'fired'")).as("a live cluster is never late by 60 s").isZero();
        await().atMost(20, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") >= 5);
    }

    /**
     * V13_5: the schedulers of idle nodes sleep up to a minute; a schedule added elsewhere (the CLI's
     * `schedules add` is this store call) wakes them by notification, one places it and it fires at its
     * first fire time, well before either node would have looked again on its own.
     */
    @Test
    void aScheduleAddedElsewhereWakesTheSleepingSchedulersAndFiresOnTime() throws Exception {
        Dispatcher a = node("node-a");
        Dispatcher b = node("node-b");
        await().atMost(15, TimeUnit.SECONDS).until(() -> a.listening() && b.listening()
                && a.schedulerNextRunIn().compareTo(Duration.ofSeconds(30)) > 0
                && b.schedulerNextRunIn().compareTo(Duration.ofSeconds(30)) > 0);

        ScheduleStore store = new ScheduleStore(db.database().dataSource());
        assertThat(store.add(Schedule.every("tick", Duration.ofSeconds(1), "tick"), true, "cli:ops")).isTrue();

        // the first fire time, and the next a second later: the node that placed or fired it sleeps until then
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("schedule_fires WHERE schedule = 'tick'") >= 2);
        assertThat(db.count("schedule_fires WHERE action <> 'fired'")).isZero();
        assertThat(fireTimes()).doesNotHaveDuplicates();
        await().atMost(10, TimeUnit.SECONDS).until(() -> db.count("tasks WHERE status = 'succeeded'") >= 2);
    }

    @Test
    void aDeclarationCreatesUpdatesAndNeverReEnablesWhatAnOperatorDisabled() throws Exception {
        ScheduleStore store = new ScheduleStore(db.database().dataSource());
        Dispatcher first = node("node-a", Schedule.cron("nightly", "0 3 * * *", "tick").zone("Europe/Berlin"));
        assertThat(store.find("nightly").orElseThrow().changedBy()).isEqualTo("code:node-a");
        await().atMost(10, TimeUnit.SECONDS).until(() -> store.find("nightly").orElseThrow().nextFireAt() != null);
        first.stop();
        assertThat(store.upsert(Schedule.cron("nightly", "0 3 * * *", "tick").zone("Europe/Berlin"), "x"))
                .isEqualTo(ScheduleStore.Upsert.UNCHANGED);
        var placed = store.find("nightly").orElseThrow().nextFireAt();

        assertThat(store.setEnabled("nightly", false, "ops")).contains(true);
        // a new deployment changes the task: applied, still disabled
        node("node-b", Schedule.cron("nightly", "0 3 * * *", "tick").zone("Europe/Berlin").queue("reports"));
        ScheduleStore.Stored s = store.find("nightly").orElseThrow();
        assertThat(s.enabled()).isFalse();
        assertThat(s.queue()).isEqualTo("reports");
        assertThat(s.changedBy()).isEqualTo("code:node-b");

        // enabled again, then a change of the payload alone keeps the next fire time; of the timing, replaces it
        store.setEnabled("nightly", true, "ops");
        await().atMost(10, TimeUnit.SECONDS).until(() -> store.find("nightly").orElseThrow().nextFireAt() != null);
        assertThat(store.find("nightly").orElseThrow().nextFireAt()).isEqualTo(placed);
        assertThat(store.upsert(Schedule.cron("nightly", "0 3 * * *", "tick").zone("Europe/Berlin").queue("reports")
                .payload("{\"v\": 2}"), "x")).isEqualTo(ScheduleStore.Upsert.UPDATED);
        assertThat(store.find("nightly").orElseThrow().nextFireAt()).isEqualTo(placed);
        store.upsert(Schedule.cron("nightly", "0 4 * * *", "tick").zone("Europe/Berlin"), "x");
        assertThat(store.find("nightly").orElseThrow().nextFireAt()).isNull();
    }
}

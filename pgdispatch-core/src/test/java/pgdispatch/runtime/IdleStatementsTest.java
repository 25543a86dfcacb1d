package pgdispatch.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Schedule;
import pgdispatch.testing.TestDatabase;

/**
 * What an idle node sends, counted at the JDBC level: pgJDBC logs each statement it executes with the
 * extended protocol (its {@code FE=> Execute} line at FINEST) on the thread that runs it, so a handler
 * counts them per pgdispatch thread over a window of idle claim polls (the pool's validation of an idle
 * connection is a simple query, not counted here: the bench counts it). Before V13_5 the claim
 * loop read the limit keys at every idle poll (two statements a poll) and the scheduler read the due
 * schedules every 2 s; now the claim loop sends only its claim, and the scheduler, with its one schedule
 * an hour away, sleeps through the window (notifications would wake it).
 */
class IdleStatementsTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Logger PGJDBC = Logger.getLogger("org.postgresql");
    private final Map<String, AtomicLong> byThread = new ConcurrentHashMap<>();
    private final Handler counter = new Handler() {
        @Override
        public void publish(LogRecord r) {
            String m = r.getMessage();
            if (m != null && m.contains("FE=> Execute")) {
                byThread.computeIfAbsent(Thread.currentThread().getName(), k -> new AtomicLong()).incrementAndGet();
            }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };
    private Level previousLevel;
    private Dispatcher node;

    @BeforeEach
    void count() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, schedules, schedule_fires, concurrency_limits");
        previousLevel = PGJDBC.getLevel();
        PGJDBC.setLevel(Level.FINEST);
        counter.setLevel(Level.ALL);
        PGJDBC.addHandler(counter);
    }

    @AfterEach
    void stop() {
        if (node != null) node.halt();
        PGJDBC.removeHandler(counter);
        PGJDBC.setLevel(previousLevel);
    }

    private long statements(String thread) {
        AtomicLong n = byThread.get(thread);
        return n == null ? 0 : n.get();
    }

    private long claims() {
        return node.metrics().registry().get("pgdispatch.claim").timer().count();
    }

    @Test
    void anIdleNodeSendsOnlyItsClaimPollAndTheSchedulerSleeps() throws Exception {
        DispatcherConfig cfg = db.config().withNode("node-idle", List.of("default"), 2)
                .withPollInterval(Duration.ofMillis(250)).withDrainTimeout(Duration.ZERO)
                .withHttpPort(DispatcherConfig.HTTP_OFF);
        node = Dispatcher.builder(cfg).schedule(Schedule.every("hourly", Duration.ofHours(1), "noop")).build().start();
        // settled: listening, the schedule placed, and the scheduler asleep until the safety interval (its
        // first runs, before and after LISTEN came up, are over)
        await().atMost(10, TimeUnit.SECONDS).until(() -> node.listening()
                && db.count("schedules WHERE next_fire_at IS NOT NULL") == 1
                && node.schedulerNextRunIn().compareTo(Duration.ofSeconds(30)) > 0);

        long claims0 = claims();
        long claimer0 = statements("pgdispatch-claimer");
        long scheduler0 = statements("pgdispatch-scheduler");
        // six idle polls: about 6 s (the poll backs off to 4 x 250 ms while LISTEN is up)
        await().atMost(30, TimeUnit.SECONDS).until(() -> claims() >= claims0 + 6);
        long polls = claims() - claims0;
        long claimer = statements("pgdispatch-claimer") - claimer0;
        long scheduler = statements("pgdispatch-scheduler") - scheduler0;

        // one statement per poll, give or take a poll under way at either end of the window; before V13_5
        // the limit keys were read at every idle poll too (2 per poll), and the scheduler ran every 2 s
        assertThat(claimer).as("claimer statements over %d idle polls", polls).isBetween(polls - 1, polls + 1);
        assertThat(scheduler).as("scheduler statements over %d idle polls", polls).isZero();
    }

    @Test
    void theClusterGaugesAreReadFromTheDatabaseOnlyWhileSomethingReadsTheMeters() throws Exception {
        DispatcherConfig cfg = db.config().withNode("node-gauges", List.of("default"), 2)
                .withPollInterval(Duration.ofMillis(250)).withDrainTimeout(Duration.ZERO)
                .withHttpPort(DispatcherConfig.HTTP_OFF);
        node = Dispatcher.builder(cfg).gaugeInterval(Duration.ofMillis(100)).build().start();
        // the first refresh runs whatever happens (the series must exist): wait for its five queries
        // (queue depth and lag, dependency events, leases, paused queues, limits)
        await().atMost(10, TimeUnit.SECONDS).until(() -> statements("pgdispatch-gauges") >= 5);
        node.metrics().readSinceLastLook(); // forget reads made while starting
        long gauges0 = statements("pgdispatch-gauges");
        long claims0 = claims();
        // four idle polls (about 4 s): some forty gauge ticks, and nothing reads the meters
        await().atMost(30, TimeUnit.SECONDS).until(() -> claims() >= claims0 + 4);
        assertThat(statements("pgdispatch-gauges") - gauges0).as("gauge queries with no reader").isZero();

        // a scrape reads every gauge; the next tick refreshes the figures from the database
        node.metrics().registry().get("pgdispatch.node.ready").gauge().value();
        await().atMost(10, TimeUnit.SECONDS).until(() -> statements("pgdispatch-gauges") > gauges0);
    }
}

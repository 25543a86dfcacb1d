package pgdispatch.runtime;

import java.sql.Connection;
import java.time.Duration;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Set;
import java.util.function.Consumer;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.store.Database;

/**
 * LISTENs on the fixed channel {@code pgdispatch_wakeup} (payload: the queue name) on a connection of
 * its own, and wakes the claim loop when a queue it serves gets a due task. Two payloads no queue name
 * can take (V13_5) are passed on too: {@link #SCHEDULES} (a schedule may fire sooner) and {@link #LIMITS}
 * (the concurrency limits changed). The channel name is a constant: no queue name is ever interpolated
 * into SQL. A lost connection is re-opened with back-off; meanwhile polling still finds the work. On each
 * (re)connect {@code onWake} gets {@code null}: anything may have changed while nobody listened.
 */
final class Wakeups {
    private static final Logger log = LoggerFactory.getLogger(Wakeups.class);
    static final String CHANNEL = "pgdispatch_wakeup";
    /** V13_5's payload for a schedule that may fire sooner than the schedulers sleep. */
    static final String SCHEDULES = ":schedules";
    /** V13_5's payload for a change of the concurrency limits. */
    static final String LIMITS = ":limits";

    private final DatabaseUrl url;
    private final Set<String> queues;
    private final Consumer<String> onWake;
    private volatile boolean stopped;
    private volatile Connection connection;
    private Thread thread;
    /** The longest a dead LISTEN connection goes unnoticed, besides the socket timeout itself. */
    static final Duration PROBE_MAX = Duration.ofSeconds(30);
    private final Duration socketTimeout;
    private final long probeEveryNanos;

    Wakeups(DatabaseUrl url, Duration socketTimeout, Set<String> queues, Consumer<String> onWake) {
        this.url = url;
        this.socketTimeout = socketTimeout;
        // a LISTEN connection only reads: one the network dropped silently would look idle forever, and
        // wake-ups would stop while listening() says true; a probe query every so often meets the
        // socket timeout instead (0 = no probe, no timeout)
        this.probeEveryNanos = socketTimeout.isZero() ? Long.MAX_VALUE : Math.min(PROBE_MAX.toNanos(), socketTimeout.toNanos());
        this.queues = Set.copyOf(queues);
        this.onWake = onWake;
    }

    void start() {
        thread = Thread.ofPlatform().daemon().name("pgdispatch-wakeups").start(this::loop);
    }

    private void loop() {
        long backoff = 200;
        while (!stopped) {
            try (Connection c = Database.connect(url, socketTimeout); Statement st = c.createStatement()) {
                connection = c;
                st.execute("LISTEN " + CHANNEL);
                backoff = 200;
                onWake.accept(null); // anything inserted while we were not listening
                PGConnection pg = c.unwrap(PGConnection.class);
                long lastProbe = System.nanoTime();
                while (!stopped) {
                    if (System.nanoTime() - lastProbe >= probeEveryNanos) {
                        st.execute("SELECT 1");
                        lastProbe = System.nanoTime();
                    }
                    PGNotification[] ns = pg.getNotifications(1000);
                    if (ns == null) continue;
                    String queue = null;
                    boolean schedules = false, limits = false;
                    for (PGNotification n : ns) {
                        String p = n.getParameter();
                        if (p.equals(SCHEDULES)) schedules = true;
                        else if (p.equals(LIMITS)) limits = true;
                        else if (queue == null && queues.contains(p)) queue = p; // one wake-up claims from every queue
                    }
                    // the limits first: a claim woken by the same batch reads them before it claims
                    if (limits) onWake.accept(LIMITS);
                    if (schedules) onWake.accept(SCHEDULES);
                    if (queue != null) onWake.accept(queue);
                }
            } catch (Throwable e) {
                // SQLException: the connection failed; anything else is unforeseen, and must not end the thread
                if (stopped) return;
                if (e instanceof SQLException) {
                    log.warn("wakeups: LISTEN connection failed ({}); reconnecting in {} ms, polling meanwhile", e.getMessage(), backoff);
                } else {
                    log.error("wakeups: unexpected error; reconnecting in {} ms, polling meanwhile", backoff, e);
                }
                try {
                    Thread.sleep(backoff); // reconnect back-off
                } catch (InterruptedException ie) {
                    return;
                }
                backoff = Math.min(backoff * 2, 10_000);
            } finally {
                connection = null;
            }
        }
    }

    /** True while the LISTEN connection is up: every insert of due work then wakes the claim loop. */
    boolean listening() {
        return connection != null;
    }

    void stop() {
        stopped = true;
        Connection c = connection;
        if (c != null) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing to unblock the listener; its state no longer matters
            }
        }
        if (thread != null) {
            thread.interrupt();
            try {
                thread.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}

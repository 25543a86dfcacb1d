package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/**
 * The task lifecycle as a state machine: random interleavings of every {@link TaskStore} transition
 * (claim, claim whose response is lost, reclaim, renew, heartbeat, complete, fail, a zombie's late
 * write with a superseded token, cancel, operator retry and quarantine, reap, graceful release, node
 * crash and restart with startup recovery), pausing and resuming a queue, and setting and clearing a
 * concurrency limit on a kind or a queue (issue 15), across three owners and three tasks in two queues
 * (few, so they collide), plus a fourth task that depends on the first two (issue 15: it waits while
 * either has not ended, is released when both have succeeded, and is cancelled or, when the case says
 * run anyway, released when one ends otherwise), against a real database. For each claim the model predicts which tasks it
 * returns: none from a paused queue (not even an expired lease to take over), none covered by a limit
 * the claim did not lock (a node that has not read the limits since one was set), and of a locked
 * limit's kind or queue no more new starts than its room (its maximum less what runs now). Time passes by UPDATE (a lease or heartbeat pushed into the past, a node gone silent, a
 * retry made due), never by sleeping. After every step the stored rows, the events written (each one:
 * type, owner and lease token, in order) and each call's answer (which writes were accepted) must equal
 * a small reference model of the lifecycle.
 *
 * <p>Sequences come from a seeded generator; a failing one is shrunk (chunks of steps removed, then
 * each step simplified) and reported with the seed, ready to paste into a regression test through
 * {@link #run}. Override with {@code -Dpgdispatch.props.seed=N -Dpgdispatch.props.tries=N}. (jqwik is
 * not used: from 1.10 its maintainer asks that AI coding agents not use it, and this test was written
 * by one; the generator and shrinker below are all the machinery a list of steps needs.)
 */
class TaskLifecycleProperties {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static final int TASKS = 4;
    static final int OWNERS = 3;
    static final int MAX_REQUEUE = 1;
    static final int MAX_STEPS = 40;
    static final Duration LEASE = Duration.ofMinutes(10);
    static final Duration STALE = Duration.ofMinutes(15);
    static final Duration NODE_TIMEOUT = Duration.ofMinutes(15);
    static final long FAR_PAST = -1_000_000_000L; // logical time of a run_at pushed hours into the past
    /**
     * The kind and queue of each task: the second one's handler declares compensate (issue 14, item 7);
     * kind k spans both queues and queue default both kinds, so a limit on either covers two tasks.
     * (Regression sequences below pass two or three priorities: they run with the first tasks only; four
     * bring in the dependent.)
     */
    static final List<String> KINDS = List.of("k", "saga", "k", "k");
    static final List<String> QUEUES_OF = List.of("default", "default", "mail", "default");
    /**
     * The tasks each task depends on (V12_2), by index: the fourth waits for the first two, inserted after
     * them; what it does when one ends other than succeeded is the case's {@code runAnyway}.
     */
    static final Map<Integer, List<Integer>> DEPENDS_ON = Map.of(3, List.of(0, 1));
    static final List<String> QUEUES = List.of("default", "mail");
    static final Set<String> COMPENSATING_KINDS = Set.of("saga");
    static final Map<String, Duration> LEASES = Map.of("k", LEASE, "saga", LEASE);
    /** The claim serves these kinds, in this order (leaseByKind's keys). */
    static final List<String> SERVED_KINDS = List.of("k", "saga");

    private static Database database;
    private static TaskStore store;
    private static NodeStore nodes;
    private static QueueStore queues;
    private static LimitStore limits;

    @BeforeAll
    static void stores() {
        database = db.database();
        store = new TaskStore(database);
        nodes = new NodeStore(database.dataSource());
        queues = new QueueStore(database.dataSource());
        limits = new LimitStore(database.dataSource());
    }

    // ------------------------------------------------------------------ operations

    enum Kind {
        CLAIM, CLAIM_RESPONSE_LOST, RECLAIM, RENEW, HEARTBEAT, COMPLETE, FAIL, FAIL_PERMANENT, ZOMBIE_COMPLETE,
        CANCEL, RETRY, QUARANTINE, REAP, RELEASE_AND_STOP, CRASH, RESTART,
        EXPIRE_LEASE, STALE_HEARTBEAT, NODE_SILENT, MAKE_DUE,
        /** Of the queue of the op's task. */
        PAUSE, RESUME,
        /** On the kind (variant even) or the queue (odd) of the op's task; a set limit's size is the op's owner (0-2). */
        SET_LIMIT, CLEAR_LIMIT
    }

    static final Map<Kind, Integer> WEIGHTS = new java.util.EnumMap<>(Map.ofEntries(
            Map.entry(Kind.CLAIM, 6), Map.entry(Kind.CLAIM_RESPONSE_LOST, 2), Map.entry(Kind.RECLAIM, 2), Map.entry(Kind.RENEW, 3),
            Map.entry(Kind.HEARTBEAT, 3), Map.entry(Kind.COMPLETE, 3), Map.entry(Kind.FAIL, 2), Map.entry(Kind.FAIL_PERMANENT, 1),
            Map.entry(Kind.ZOMBIE_COMPLETE, 3), Map.entry(Kind.CANCEL, 1), Map.entry(Kind.RETRY, 2), Map.entry(Kind.QUARANTINE, 1),
            Map.entry(Kind.REAP, 3), Map.entry(Kind.RELEASE_AND_STOP, 1), Map.entry(Kind.CRASH, 1), Map.entry(Kind.RESTART, 2),
            Map.entry(Kind.EXPIRE_LEASE, 4), Map.entry(Kind.STALE_HEARTBEAT, 1), Map.entry(Kind.NODE_SILENT, 1),
            Map.entry(Kind.MAKE_DUE, 2), Map.entry(Kind.PAUSE, 1), Map.entry(Kind.RESUME, 1), Map.entry(Kind.SET_LIMIT, 2),
            Map.entry(Kind.CLEAR_LIMIT, 1)));

    /**
     * One step: what, by which owner, on which task, and a small variant (claim size and whether the claim
     * locks the limits it sees, delay, token choice, limit scope).
     */
    record Op(Kind kind, int owner, int task, int variant) {
        @Override
        public String toString() {
            return "new Op(Kind." + kind + ", " + owner + ", " + task + ", " + variant + ")";
        }
    }

    /** A generated case: the steps, each task's priority and max_attempts, and what a dependent does when a dependency fails. */
    record Case(List<Op> ops, List<Integer> priorities, List<Integer> maxAttempts, boolean runAnyway) {
        static Case random(Random r) {
            List<Op> ops = new ArrayList<>();
            int n = 1 + r.nextInt(MAX_STEPS);
            for (int i = 0; i < n; i++) {
                ops.add(new Op(pick(r), r.nextInt(OWNERS), r.nextInt(TASKS), r.nextInt(4)));
            }
            List<Integer> prio = new ArrayList<>();
            List<Integer> max = new ArrayList<>();
            for (int i = 0; i < TASKS; i++) {
                prio.add(r.nextInt(2));
                max.add(1 + r.nextInt(3));
            }
            return new Case(List.copyOf(ops), List.copyOf(prio), List.copyOf(max), r.nextBoolean());
        }

        /** Claims and lease expiry often (they make owners compete), crashes and operator actions less. */
        private static Kind pick(Random r) {
            int total = WEIGHTS.values().stream().mapToInt(Integer::intValue).sum();
            int x = r.nextInt(total);
            for (var e : WEIGHTS.entrySet()) {
                x -= e.getValue();
                if (x < 0) return e.getKey();
            }
            throw new IllegalStateException();
        }

        Case withOps(List<Op> o) {
            return new Case(List.copyOf(o), priorities, maxAttempts, runAnyway);
        }
    }

    @Test
    void storedLifecycleFollowsTheModel() {
        long seed = Long.getLong("pgdispatch.props.seed", new Random().nextLong());
        int tries = Integer.getInteger("pgdispatch.props.tries", 200);
        Random random = new Random(seed);
        for (int i = 1; i <= tries; i++) {
            Case c = Case.random(random);
            Throwable failure = attempt(c);
            if (failure != null) {
                Case small = shrink(c);
                Throwable why = attempt(small);
                throw new AssertionError("seed " + seed + ", try " + i + " failed; shrunk from " + c.ops().size() + " to "
                        + small.ops().size() + " steps:\n  ops = " + small.ops() + "\n  priorities = " + small.priorities()
                        + ", maxAttempts = " + small.maxAttempts() + ", runAnyway = " + small.runAnyway() + "\n" + (why == null ? failure : why).getMessage(),
                        why == null ? failure : why);
            }
        }
    }

    // Shrunk sequences the property found against deliberately broken copies of TaskStore (each fails
    // there and passes here); kept as examples of the rules they pin. None was found against the real code.

    private static final List<Integer> SAME_PRIORITY = List.of(0, 0);
    private static final List<Integer> THREE_ATTEMPTS = List.of(3, 3);

    @Test
    void heartbeatWithATokenTheSameNodeHasSinceSupersededIsRefused() throws SQLException {
        run(List.of(new Op(Kind.CLAIM, 1, 0, 0), new Op(Kind.EXPIRE_LEASE, 0, 0, 0),
                new Op(Kind.CLAIM_RESPONSE_LOST, 1, 0, 0), new Op(Kind.HEARTBEAT, 1, 0, 0)), SAME_PRIORITY, THREE_ATTEMPTS);
    }

    @Test
    void takingOverAnExpiredLeaseCountsAgainstTheRequeueBudget() throws SQLException {
        run(List.of(new Op(Kind.CLAIM, 0, 0, 0), new Op(Kind.EXPIRE_LEASE, 0, 0, 0),
                new Op(Kind.CLAIM_RESPONSE_LOST, 1, 0, 0)), SAME_PRIORITY, THREE_ATTEMPTS);
    }

    @Test
    void restartQuarantinesWhatItsPreviousLifeLeftWithTheBudgetSpent() throws SQLException {
        run(List.of(new Op(Kind.CLAIM, 0, 0, 3), new Op(Kind.EXPIRE_LEASE, 0, 0, 0), new Op(Kind.CLAIM, 1, 0, 0),
                new Op(Kind.RESTART, 1, 0, 0)), SAME_PRIORITY, THREE_ATTEMPTS);
    }

    @Test
    void renewalThatPresentsAnAlreadyCompletedLeaseDoesNotCallItLost() throws SQLException {
        run(List.of(new Op(Kind.CLAIM, 2, 0, 0), new Op(Kind.ZOMBIE_COMPLETE, 2, 0, 0), new Op(Kind.RENEW, 2, 0, 2)),
                SAME_PRIORITY, THREE_ATTEMPTS);
    }

    @Test
    void releaseAtShutdownGivesTheAttemptBack() throws SQLException {
        run(List.of(new Op(Kind.CLAIM, 0, 0, 0), new Op(Kind.RELEASE_AND_STOP, 0, 0, 0)), SAME_PRIORITY, THREE_ATTEMPTS);
    }

    @Test
    void reclaimAfterALostClaimResponseTakesBackOnlyRowsStillRunning() throws SQLException {
        run(List.of(new Op(Kind.CLAIM_RESPONSE_LOST, 0, 0, 0), new Op(Kind.CANCEL, 0, 0, 0), new Op(Kind.RECLAIM, 0, 0, 0)),
                SAME_PRIORITY, THREE_ATTEMPTS);
    }

    @Test
    void repeatingASuccessUnderTheSameTokenIsAcknowledgedWithoutASecondEvent() throws SQLException {
        // found when main made a retried success idempotent (f1de253): the model now says the same
        run(List.of(new Op(Kind.CLAIM, 2, 0, 0), new Op(Kind.ZOMBIE_COMPLETE, 2, 1, 0), new Op(Kind.ZOMBIE_COMPLETE, 2, 1, 0)),
                List.of(1, 0), List.of(2, 3));
    }

    @Test
    void aPausedQueuesCompensationStepWaitsLikeItsPendingTasks() throws SQLException {
        // found when the model learnt pause (issue 15): the claim read compensation steps of paused queues
        run(List.of(new Op(Kind.CLAIM, 0, 0, 1), new Op(Kind.PAUSE, 0, 0, 0), new Op(Kind.FAIL, 0, 1, 0),
                new Op(Kind.CLAIM_RESPONSE_LOST, 0, 0, 0)), List.of(1, 0, 0), List.of(1, 1, 2));
    }

    @Test
    void aCompensationStepOfAKindAtItsLimitTakesNoPlaceInTheClaim() throws SQLException {
        // a claim of one task: the saga's compensation step (first by priority) is left out with its full
        // kind, and the claim takes the next task instead of coming back empty
        run(List.of(new Op(Kind.CLAIM, 0, 0, 1), new Op(Kind.FAIL, 0, 1, 0), new Op(Kind.SET_LIMIT, 0, 1, 0),
                new Op(Kind.CLAIM, 1, 0, 0)), List.of(1, 0, 1), List.of(1, 1, 1));
    }

    @Test
    void aDependentWaitsForBothDependenciesAndIsClaimedOnceTheLastHasSucceeded() throws SQLException {
        // the fourth task waits for the first two (issue 15): not claimed while they run, pending at the
        // second success, then ahead of the third task by priority
        run(List.of(new Op(Kind.CLAIM, 0, 0, 1), new Op(Kind.CLAIM, 1, 0, 0), new Op(Kind.COMPLETE, 0, 0, 0),
                new Op(Kind.COMPLETE, 0, 1, 0), new Op(Kind.CLAIM, 1, 0, 0), new Op(Kind.COMPLETE, 1, 3, 0)),
                List.of(0, 0, 1, 0), List.of(1, 1, 1, 1), false);
    }

    @Test
    void aDependencyEndingOtherwiseCancelsTheDependentOrReleasesOneThatRunsAnyway() throws SQLException {
        for (boolean runAnyway : List.of(false, true)) {
            // the saga's failure goes through its compensation first: only its end (compensated) counts
            run(List.of(new Op(Kind.CLAIM, 0, 0, 1), new Op(Kind.FAIL_PERMANENT, 0, 1, 0), new Op(Kind.COMPLETE, 0, 0, 0),
                    new Op(Kind.CLAIM, 1, 0, 0), new Op(Kind.COMPLETE, 1, 1, 0), new Op(Kind.CLAIM, 2, 0, 1),
                    new Op(Kind.CANCEL, 0, 3, 0), new Op(Kind.RETRY, 0, 3, 0)),
                    List.of(0, 0, 1, 0), List.of(1, 1, 1, 1), runAnyway);
        }
    }

    private static Throwable attempt(Case c) {
        try {
            run(c.ops(), c.priorities(), c.maxAttempts(), c.runAnyway());
            return null;
        } catch (AssertionError | SQLException | RuntimeException e) {
            return e;
        }
    }

    /** Smallest failing case found greedily: drop chunks of steps, then single steps, then simplify each. */
    private static Case shrink(Case failing) {
        Case best = failing;
        boolean progress = true;
        while (progress) {
            progress = false;
            for (int chunk = Math.max(1, best.ops().size() / 2); chunk >= 1 && !progress; chunk /= 2) {
                for (int from = 0; from + chunk <= best.ops().size(); from++) {
                    List<Op> fewer = new ArrayList<>(best.ops());
                    fewer.subList(from, from + chunk).clear();
                    if (!fewer.isEmpty() && attempt(best.withOps(fewer)) != null) {
                        best = best.withOps(fewer);
                        progress = true;
                        break;
                    }
                }
                if (chunk == 1) break;
            }
            for (int i = 0; i < best.ops().size() && !progress; i++) {
                Op op = best.ops().get(i);
                for (Op simpler : List.of(new Op(op.kind(), 0, op.task(), op.variant()), new Op(op.kind(), op.owner(), 0, op.variant()),
                        new Op(op.kind(), op.owner(), op.task(), 0))) {
                    if (simpler.equals(op)) continue;
                    List<Op> ops = new ArrayList<>(best.ops());
                    ops.set(i, simpler);
                    if (attempt(best.withOps(ops)) != null) {
                        best = best.withOps(ops);
                        progress = true;
                        break;
                    }
                }
            }
        }
        return best;
    }

    /** Runs one sequence against a fresh set of tasks; regression tests call it with a shrunk sequence. */
    static void run(List<Op> ops, List<Integer> priorities, List<Integer> maxAttempts) throws SQLException {
        run(ops, priorities, maxAttempts, false);
    }

    /** The same; with four tasks or more, the fourth depends on the first two and runs anyway if {@code runAnyway}. */
    static void run(List<Op> ops, List<Integer> priorities, List<Integer> maxAttempts, boolean runAnyway) throws SQLException {
        Model m = reset(priorities, maxAttempts, runAnyway);
        int step = 0;
        for (Op op : ops) {
            step++;
            m.clock++;
            String where = "step " + step + " " + op;
            apply(m, op, where);
            settleDependencies(m);
            compare(m, where);
        }
    }

    /**
     * What the database does when a dependency ends (V12_2's trigger), whichever step ended it: each edge
     * to a task now terminal is gone; a waiting dependent counts it (released at the last one) or, when it
     * ended other than succeeded and the dependent does not run anyway, is cancelled. The order in which
     * one step ends two dependencies does not change the outcome, so the model resolves them in id order.
     */
    private static void settleDependencies(Model m) {
        for (TaskModel d : m.tasks) {
            for (java.util.Iterator<Integer> it = d.edges.iterator(); it.hasNext(); ) {
                TaskModel dep = m.tasks.get(it.next());
                if (!dep.terminal()) continue;
                it.remove();
                if (!d.status.equals("waiting")) continue;
                d.dependenciesLeft = Math.max(d.dependenciesLeft - 1, 0);
                if (!dep.status.equals("succeeded") && !d.runAnyway) {
                    d.status = "cancelled";
                    d.lastErrorPrefix = "dependency " + dep.id + " ended " + dep.status;
                    d.event("cancelled", null, d.token);
                } else if (d.dependenciesLeft == 0) {
                    d.status = "pending";
                    d.event("dependencies_resolved", null, d.token);
                }
            }
        }
    }

    // ------------------------------------------------------------------ the model

    static final class TaskModel {
        long id;
        String kind;
        String queue;
        int priority;
        int maxAttempts;
        String status = "pending";
        String owner;
        long token;
        int attempts;
        int requeues;
        long runAt; // logical time; FAR_PAST + t for a run_at pushed into the past
        boolean notDue;
        boolean leaseExpired;
        boolean heartbeatStale;
        String lastErrorPrefix;
        /** Of the compensable kind (V10_5: the second task; every owner serves it with a compensating handler). */
        boolean compensable;
        /** In its compensation phase: waiting steps are 'compensating', a running one is the compensation. */
        boolean compensating;
        /** The events this task must have, in order: type, owner and lease token each (issue 11, item 12). */
        final List<Ev> events = new ArrayList<>();
        /** Its dependencies that have not ended (rows of task_dependencies), by index; how many it still waits for. */
        final Set<Integer> edges = new java.util.TreeSet<>();
        int dependenciesLeft;
        boolean runAnyway;

        boolean running() {
            return status.equals("running");
        }

        boolean terminal() {
            return Set.of("succeeded", "failed", "cancelled", "quarantined", "compensated").contains(status);
        }

        /** Waiting to be claimed: pending, or a compensation step waiting (claimable alike). */
        boolean waiting() {
            return status.equals(compensating ? "compensating" : "pending");
        }

        /** A failure with no attempt left, or a cancel after the task had started, of a compensable kind. */
        void enterCompensation(long now) {
            status = "compensating";
            compensating = true;
            owner = null;
            attempts = 0;
            requeues = 0;
            runAt = now;
            notDue = false;
        }

        void event(String e, String owner, long leaseToken) {
            events.add(new Ev(e, owner, leaseToken));
        }
    }

    /** One {@code task_events} row as compared: a wrong owner or token fails the step, not only a wrong count. */
    record Ev(String event, String owner, long leaseToken) {
        @Override
        public String toString() {
            return event + "(" + owner + ", " + leaseToken + ")";
        }
    }

    static final class OwnerModel {
        final String name;
        String incarnation;
        boolean down; // crashed or stopped: acts again only after RESTART
        boolean stopped;
        boolean silent;
        final Map<Integer, Long> held = new LinkedHashMap<>();
        final Map<Integer, Long> finished = new LinkedHashMap<>(); // outcome accepted, lease maybe still presented
        final Map<Integer, Set<Long>> everHeld = new HashMap<>();

        OwnerModel(String name) {
            this.name = name;
        }

        void hold(int task, long token) {
            held.put(task, token);
            everHeld.computeIfAbsent(task, k -> new HashSet<>()).add(token);
        }
    }

    static final class Model {
        final List<TaskModel> tasks = new ArrayList<>();
        final List<OwnerModel> owners = new ArrayList<>();
        long clock;
        final Set<String> paused = new HashSet<>();
        /** Concurrency limits by key ({@code kind:k}, {@code queue:mail}): their maximum running. */
        final Map<String, Integer> limits = new TreeMap<>();

        /** The keys of the limits that cover {@code t}. */
        List<String> limitsOf(TaskModel t) {
            return limits.keySet().stream().filter(k -> coveredBy(t, k)).toList();
        }

        long runningIn(String limitKey) {
            return tasks.stream().filter(t -> t.running() && coveredBy(t, limitKey)).count();
        }

        boolean holds(OwnerModel o, TaskModel t, long token) {
            return t.running() && o.name.equals(t.owner) && t.token == token;
        }
    }

    private static Model reset(List<Integer> priorities, List<Integer> maxAttempts, boolean runAnyway) throws SQLException {
        Model m = new Model();
        int independent = (int) java.util.stream.IntStream.range(0, priorities.size()).filter(i -> !DEPENDS_ON.containsKey(i)).count();
        try (Connection c = database.dataSource().getConnection(); Statement st = c.createStatement()) {
            st.execute("TRUNCATE tasks, task_event_log, task_dependencies, dispatcher_nodes, dispatcher_queues, concurrency_limits"
                    + " RESTART IDENTITY");
            StringBuilder sql = new StringBuilder("INSERT INTO tasks (queue, kind, priority, max_attempts) VALUES ");
            for (int i = 0; i < independent; i++) {
                sql.append(i == 0 ? "" : ", ").append("('").append(QUEUES_OF.get(i)).append("', '").append(KINDS.get(i)).append("', ")
                        .append(priorities.get(i)).append(", ").append(maxAttempts.get(i)).append(")");
            }
            st.execute(sql.toString()); // one statement: the same run_at for all, ties broken by id
            // the dependents after them (a later run_at: claimed after them at equal priority, as their ids say)
            for (int i = independent; i < priorities.size(); i++) {
                st.execute("INSERT INTO tasks (queue, kind, priority, max_attempts, depends_on, on_dependency_failure) VALUES ('"
                        + QUEUES_OF.get(i) + "', '" + KINDS.get(i) + "', " + priorities.get(i) + ", " + maxAttempts.get(i) + ", '{"
                        + String.join(",", DEPENDS_ON.get(i).stream().map(d -> String.valueOf(d + 1)).toList()) + "}', '"
                        + (runAnyway ? "run" : "cancel") + "')");
            }
        }
        for (int i = 0; i < priorities.size(); i++) {
            TaskModel t = new TaskModel();
            t.id = i + 1;
            t.kind = KINDS.get(i);
            t.queue = QUEUES_OF.get(i);
            t.priority = priorities.get(i);
            t.maxAttempts = maxAttempts.get(i);
            t.compensable = COMPENSATING_KINDS.contains(KINDS.get(i));
            if (DEPENDS_ON.containsKey(i)) {
                t.status = "waiting";
                t.edges.addAll(DEPENDS_ON.get(i));
                t.dependenciesLeft = t.edges.size();
                t.runAnyway = runAnyway;
            }
            m.tasks.add(t);
        }
        for (int i = 0; i < OWNERS; i++) {
            OwnerModel o = new OwnerModel("node-" + i);
            o.incarnation = register(o.name);
            m.owners.add(o);
        }
        return m;
    }

    private static String register(String node) {
        var r = nodes.register(node, "test-host", 1000, "test", QUEUES, SERVED_KINDS, NODE_TIMEOUT, false, true);
        return ((NodeStore.Registration.Registered) r).incarnation().toString();
    }

    // ------------------------------------------------------------------ one step, on both sides

    private static void apply(Model m, Op op, String where) throws SQLException {
        OwnerModel o = m.owners.get(op.owner());
        TaskModel t = m.tasks.get(op.task());
        boolean ownerActs = switch (op.kind()) {
            case CLAIM, CLAIM_RESPONSE_LOST, RECLAIM, RENEW, HEARTBEAT, COMPLETE, FAIL, FAIL_PERMANENT, ZOMBIE_COMPLETE,
                 RELEASE_AND_STOP, CRASH -> true;
            default -> false;
        };
        if (ownerActs && o.down) return; // a dead process does nothing until it is restarted
        switch (op.kind()) {
            case CLAIM, CLAIM_RESPONSE_LOST -> claim(m, o, 1 + op.variant() % 2, op.variant() < 2, op.kind() == Kind.CLAIM, where);
            case RECLAIM -> reclaim(m, o, where);
            case RENEW -> renew(m, o, op.variant() >= 2, where);
            case HEARTBEAT -> {
                Long token = tokenFor(o, op.task(), op.variant());
                if (token == null) return;
                boolean expected = m.holds(o, t, token);
                boolean got = store.heartbeat(o.name, t.id, token, LEASE, "{\"step\":" + m.clock + "}", "hb");
                assertThat(got).as("heartbeat accepted, " + where).isEqualTo(expected);
                if (expected) {
                    t.leaseExpired = false;
                    t.heartbeatStale = false;
                }
            }
            case COMPLETE, FAIL, FAIL_PERMANENT -> {
                Long token = o.held.get(op.task());
                if (token == null) return;
                complete(m, o, t, op.task(), token, op.kind(), op.variant(), where);
            }
            case ZOMBIE_COMPLETE -> {
                Long token = tokenFor(o, op.task(), 2 + op.variant() % 2);
                if (token == null) return;
                complete(m, o, t, op.task(), token, Kind.COMPLETE, op.variant(), where);
            }
            case CANCEL -> {
                boolean expected = (t.status.equals("waiting") || t.status.equals("pending") || t.running()) && !t.compensating;
                assertThat(store.cancel(t.id, "cancelled by test")).as("cancel accepted, " + where).isEqualTo(expected);
                if (expected) {
                    t.lastErrorPrefix = "cancelled by test";
                    t.event("cancelled", t.owner, t.token);
                    if (t.compensable && t.attempts > 0) t.enterCompensation(m.clock);
                    else t.status = "cancelled";
                }
            }
            case RETRY -> {
                boolean expected = t.terminal();
                assertThat(store.retry(t.id)).as("retry accepted, " + where).isEqualTo(expected);
                if (expected) {
                    t.status = "pending";
                    t.compensating = false;
                    t.owner = null;
                    t.attempts = 0;
                    t.requeues = 0;
                    t.runAt = m.clock;
                    t.notDue = false;
                    t.event("retried_by_operator", null, t.token);
                }
            }
            case QUARANTINE -> {
                boolean expected = t.status.equals("waiting") || t.status.equals("pending") || t.running()
                        || t.status.equals("failed") || t.status.equals("compensating");
                assertThat(store.quarantine(t.id, "looked odd")).as("quarantine accepted, " + where).isEqualTo(expected);
                if (expected) {
                    t.status = "quarantined";
                    t.lastErrorPrefix = "quarantined by operator: looked odd";
                    t.event("quarantined", t.owner, t.token);
                }
            }
            case REAP -> reap(m, where);
            case RELEASE_AND_STOP -> releaseAndStop(m, o, where);
            case CRASH -> {
                o.down = true;
                o.held.clear();
                o.finished.clear();
            }
            case RESTART -> restart(m, o, where);
            case EXPIRE_LEASE -> {
                exec("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE status = 'running' AND id = " + t.id);
                if (t.running()) t.leaseExpired = true;
            }
            case STALE_HEARTBEAT -> {
                exec("UPDATE tasks SET last_heartbeat_at = now() - interval '1 hour' WHERE status = 'running' AND id = " + t.id);
                if (t.running()) t.heartbeatStale = true;
            }
            case NODE_SILENT -> {
                exec("UPDATE dispatcher_nodes SET last_seen_at = now() - interval '1 hour' WHERE node_id = '" + o.name + "'");
                o.silent = true;
            }
            case PAUSE -> {
                boolean changed = m.paused.add(t.queue);
                assertThat(queues.pause(t.queue, "test", "step " + m.clock).changed()).as("pause changed, " + where).isEqualTo(changed);
            }
            case RESUME -> {
                boolean changed = m.paused.remove(t.queue);
                assertThat(queues.resume(t.queue, "test", null).changed()).as("resume changed, " + where).isEqualTo(changed);
            }
            case SET_LIMIT -> {
                LimitStore.Scope scope = op.variant() % 2 == 0 ? LimitStore.Scope.KIND : LimitStore.Scope.QUEUE;
                String name = scope == LimitStore.Scope.KIND ? t.kind : t.queue;
                LimitStore.Limit set = limits.set(scope, name, op.owner(), "test");
                m.limits.put(set.key(), op.owner());
                assertThat(set.running()).as("running under " + set.key() + ", " + where).isEqualTo(m.runningIn(set.key()));
            }
            case CLEAR_LIMIT -> {
                LimitStore.Scope scope = op.variant() % 2 == 0 ? LimitStore.Scope.KIND : LimitStore.Scope.QUEUE;
                String name = scope == LimitStore.Scope.KIND ? t.kind : t.queue;
                boolean existed = m.limits.remove(LimitStore.key(scope, name)) != null;
                assertThat(limits.clear(scope, name)).as("limit cleared, " + where).isEqualTo(existed);
            }
            case MAKE_DUE -> {
                exec("UPDATE tasks SET run_at = now() - interval '2 hours' WHERE status IN ('pending', 'compensating') AND id = "
                        + t.id);
                if (t.waiting()) {
                    t.runAt = FAR_PAST + m.clock;
                    t.notDue = false;
                }
            }
        }
    }

    /** The token an owner writes with: the one it holds (variant 0, 1), or its newest or oldest ever (2, 3). */
    private static Long tokenFor(OwnerModel o, int task, int variant) {
        if (variant < 2) return o.held.get(task);
        Set<Long> tokens = o.everHeld.get(task);
        if (tokens == null || tokens.isEmpty()) return null;
        return variant == 2 ? tokens.stream().max(Long::compare).orElseThrow() : tokens.stream().min(Long::compare).orElseThrow();
    }

    /**
     * A claim of up to {@code limit} tasks. {@code locks}: the claim locks every limit now set on its kinds
     * and queues (as a node does once it has read them); otherwise it locks none (a node that has not
     * read the limits since they were set), and a limit then admits none of its tasks.
     */
    private static void claim(Model m, OwnerModel o, int limit, boolean locks, boolean responseArrives, String where) {
        Comparator<TaskModel> order = Comparator.<TaskModel>comparingInt(t -> t.priority).thenComparingLong(t -> t.runAt)
                .thenComparingLong(t -> t.id);
        List<String> locked = locks ? List.copyOf(m.limits.keySet()) : List.of();
        if (locks) assertThat(limits.keysFor(SERVED_KINDS, QUEUES)).as("limit keys, " + where).isEqualTo(locked);
        // a locked limit with no room left: its kind or queue is left out of the claim altogether
        Map<String, Long> room = new HashMap<>();
        for (String key : locked) room.put(key, m.limits.get(key) - m.runningIn(key));
        Set<String> full = new HashSet<>();
        room.forEach((key, left) -> {
            if (left <= 0) full.add(key);
        });
        java.util.function.Predicate<TaskModel> served = t -> !full.contains("kind:" + t.kind) && !full.contains("queue:" + t.queue)
                && !m.paused.contains(t.queue);
        boolean anyKind = SERVED_KINDS.stream().anyMatch(k -> !full.contains("kind:" + k));
        boolean anyQueue = QUEUES.stream().anyMatch(q -> !full.contains("queue:" + q));
        java.util.function.Predicate<TaskModel> unlockedLimit = t -> m.limitsOf(t).stream().anyMatch(k -> !locked.contains(k));

        // the candidates as the claim reads them: at most `limit` of each source, each in claim order
        List<TaskModel> candidates = new ArrayList<>();
        if (anyKind && anyQueue) {
            // never its own row: a node renews what it holds instead (issue 11 item 5)
            m.tasks.stream().filter(t -> t.running() && t.leaseExpired && t.requeues < MAX_REQUEUE && !o.name.equals(t.owner))
                    .filter(served).filter(unlockedLimit.negate()).sorted(order).limit(limit).forEach(candidates::add);
            for (String q : QUEUES) {
                m.tasks.stream().filter(t -> t.queue.equals(q) && t.status.equals("pending") && !t.notDue).filter(served)
                        .sorted(order).limit(limit).forEach(candidates::add);
            }
            m.tasks.stream().filter(t -> t.status.equals("compensating") && !t.notDue && COMPENSATING_KINDS.contains(t.kind))
                    .filter(served).sorted(order).limit(limit).forEach(candidates::add);
        }
        // a limit not locked admits none of its tasks; a locked one the first `room` of its new starts, ranked
        // in claim order among the candidates of its kind (or queue); a lease taken over is running already
        List<TaskModel> admitted = new ArrayList<>();
        for (TaskModel t : candidates) {
            boolean takeOver = t.running();
            boolean ok = true;
            for (String key : m.limitsOf(t)) {
                if (!locked.contains(key)) ok = false;
                else if (!takeOver) {
                    long rank = candidates.stream().filter(c -> !c.running() && coveredBy(c, key) && order.compare(c, t) <= 0).count();
                    if (rank > room.get(key)) ok = false;
                }
            }
            if (ok) admitted.add(t);
        }
        admitted.sort(order);
        List<TaskModel> expected = admitted.subList(0, Math.min(limit, admitted.size()));
        Map<String, Long> before = new HashMap<>();
        for (String key : m.limits.keySet()) before.put(key, m.runningIn(key));

        ClaimRequest request = new ClaimRequest(o.name, QUEUES, LEASES, limit, MAX_REQUEUE, true,
                ClaimRequest.DEFAULT_MAX_PAYLOAD_BYTES, COMPENSATING_KINDS, locked);
        List<ClaimedTask> got = store.claimDue(request);

        assertThat(got.stream().map(ClaimedTask::id).sorted().toList()).as("claimed ids, " + where)
                .isEqualTo(expected.stream().map(t -> t.id).sorted().toList());
        for (TaskModel t : expected) {
            String previous = t.running() ? t.owner : null;
            ClaimedTask c = got.stream().filter(x -> x.id() == t.id).findFirst().orElseThrow();
            assertThat(c.previousOwner()).as("previous owner of task " + t.id + ", " + where).isEqualTo(previous);
            t.token++;
            t.attempts++;
            if (previous != null) t.requeues++;
            t.status = "running";
            t.owner = o.name;
            t.leaseExpired = false;
            t.heartbeatStale = false;
            t.event(t.compensating ? "compensation_started" : "claimed", o.name, t.token);
            assertThat(c.compensating()).as("compensation step of task " + t.id + ", " + where).isEqualTo(t.compensating);
            assertThat(c.leaseToken()).as("token of task " + t.id + ", " + where).isEqualTo(t.token);
            assertThat(c.attempt()).as("attempt of task " + t.id + ", " + where).isEqualTo(t.attempts);
            if (responseArrives) o.hold((int) t.id - 1, t.token);
            else o.everHeld.computeIfAbsent((int) t.id - 1, k -> new HashSet<>()).add(t.token);
        }
        // the rule itself, beside the prediction: a claim never takes a paused queue's task, and never starts
        // more of a limit's tasks than it has room for (running above a lowered limit only drains)
        for (TaskModel t : expected) assertThat(m.paused).as("queue of claimed task " + t.id + ", " + where).doesNotContain(t.queue);
        for (var e : m.limits.entrySet()) {
            assertThat(m.runningIn(e.getKey())).as("running under " + e.getKey() + " after the claim, " + where)
                    .isLessThanOrEqualTo(Math.max(e.getValue(), before.get(e.getKey())));
        }
    }

    private static boolean coveredBy(TaskModel t, String limitKey) {
        return limitKey.equals("kind:" + t.kind) || limitKey.equals("queue:" + t.queue);
    }

    private static void reclaim(Model m, OwnerModel o, String where) {
        Set<Long> heldIds = new HashSet<>();
        for (int task : o.held.keySet()) heldIds.add(m.tasks.get(task).id);
        List<Long> expected = new ArrayList<>();
        for (TaskModel t : m.tasks) {
            if (t.running() && o.name.equals(t.owner) && !heldIds.contains(t.id)) expected.add(t.id);
        }
        List<ClaimedTask> got = store.reclaimOwned(o.name, heldIds, LEASES);
        assertThat(got.stream().map(ClaimedTask::id).sorted().toList()).as("reclaimed ids, " + where).isEqualTo(expected);
        for (long id : expected) {
            TaskModel t = m.tasks.get((int) id - 1);
            t.token++;
            t.leaseExpired = false;
            t.heartbeatStale = false;
            t.event("claimed", o.name, t.token);
            o.hold((int) id - 1, t.token);
        }
    }

    private static void renew(Model m, OwnerModel o, boolean presentFinished, String where) {
        List<HeldLease> held = new ArrayList<>();
        Map<Long, String> expectedLost = new TreeMap<>();
        Set<Long> expectedRenewed = new HashSet<>();
        for (var e : o.held.entrySet()) {
            TaskModel t = m.tasks.get(e.getKey());
            held.add(new HeldLease(t.id, e.getValue(), LEASE));
            if (m.holds(o, t, e.getValue())) expectedRenewed.add(t.id);
            else expectedLost.put(t.id, t.status);
        }
        if (presentFinished) {
            // the completer wrote these outcomes; a tick that read the held set before it dropped them presents them
            // with or without the pending mark: a tick may have read the set before the handler finished
            for (var e : o.finished.entrySet()) {
                held.add(new HeldLease(m.tasks.get(e.getKey()).id, e.getValue(), LEASE, e.getKey() % 2 == 0));
            }
        }
        RenewResult r = store.renewHeld(o.name, o.incarnation, held);
        assertThat(r.renewed()).as("renewed, " + where).isEqualTo(expectedRenewed);
        assertThat(new TreeMap<>(r.lost())).as("lost, " + where).isEqualTo(expectedLost);
        assertThat(r.nodeRegistered()).as("node registered, " + where).isTrue();
        for (long id : expectedRenewed) {
            TaskModel t = m.tasks.get((int) id - 1);
            t.leaseExpired = false; // a renewal is liveness, not progress: heartbeatStale stays (issue 14)
        }
        for (long id : expectedLost.keySet()) {
            m.tasks.get((int) id - 1).event("lease_lost", o.name, o.held.get((int) id - 1));
            o.held.remove((int) id - 1); // its handler is interrupted, its result discarded
        }
        if (presentFinished) o.finished.clear();
        o.silent = false;
    }

    private static void complete(Model m, OwnerModel o, TaskModel t, int task, long token, Kind how, int variant,
                                 String where) {
        boolean accepted = m.holds(o, t, token);
        boolean longDelay = variant % 2 == 1;
        Outcome outcome = how == Kind.COMPLETE ? new Outcome.Success(t.id, token, "{\"ok\":true}")
                : new Outcome.Failure(t.id, token, "boom", how == Kind.FAIL_PERMANENT,
                        longDelay ? Duration.ofHours(1) : Duration.ZERO);
        Map<Long, TaskStatus> got = store.completeIfOwned(o.name, List.of(outcome));
        o.held.remove(task); // accepted or refused, the completer drops the lease after the write
        if (how == Kind.COMPLETE && (t.status.equals("succeeded") || t.status.equals("compensated"))
                && o.name.equals(t.owner) && t.token == token) {
            // the same success again (a retry after a commit whose answer was lost): acknowledged, nothing written
            assertThat(got).as("repeated success acknowledged, " + where).isEqualTo(Map.of(t.id, TaskStatus.of(t.status)));
            return;
        }
        if (!accepted) {
            assertThat(got).as("completion refused, " + where).isEmpty();
            t.event("completion_refused", o.name, token);
            return;
        }
        String next;
        if (how == Kind.COMPLETE) {
            next = t.compensating ? "compensated" : "succeeded";
            t.event(next, o.name, token);
        } else if (t.compensating) {
            // a compensation step's failure: retried within its own budget, else quarantined; last_error keeps the
            // original error (the step's goes to compensation_error)
            if (how == Kind.FAIL && t.attempts < t.maxAttempts) {
                t.status = "compensating";
                t.owner = null;
                t.runAt = m.clock;
                t.notDue = longDelay;
                t.event("compensation_failed", o.name, token);
            } else {
                t.status = "quarantined";
                t.event("quarantined", o.name, token);
            }
            assertThat(got).as("compensation failure accepted, " + where).isEqualTo(Map.of(t.id, TaskStatus.of(t.status)));
            o.finished.put(task, token);
            return;
        } else if (how == Kind.FAIL && t.attempts < t.maxAttempts) {
            next = "pending";
            t.owner = null;
            t.runAt = m.clock;
            t.notDue = longDelay;
            t.event("retry_scheduled", o.name, token);
        } else {
            next = t.compensable ? "compensating" : "failed";
            t.event("failed", o.name, token);
        }
        if (!next.equals("succeeded") && !next.equals("compensated")) t.lastErrorPrefix = "boom";
        assertThat(got).as("completion accepted, " + where).isEqualTo(Map.of(t.id, TaskStatus.of(next)));
        if (next.equals("compensating")) t.enterCompensation(m.clock);
        else t.status = next;
        o.finished.put(task, token);
    }

    private static void reap(Model m, String where) {
        Map<Long, String> expected = new TreeMap<>();
        for (TaskModel t : m.tasks) {
            if (!t.running()) continue;
            OwnerModel owner = m.owners.stream().filter(x -> x.name.equals(t.owner)).findFirst().orElseThrow();
            // every owner here is a registered node: a silent handler (heartbeatStale) of a live one is its
            // owner's to judge (the renewal's stuck rule, ProgressLeaseTest), never the reaper's (issue 14)
            if (t.leaseExpired || owner.stopped || owner.silent) {
                expected.put(t.id, t.requeues < MAX_REQUEUE ? "requeue" : "quarantine");
            }
        }
        var got = store.requeueStale(STALE, NODE_TIMEOUT, MAX_REQUEUE, 100);
        assertThat(got).as("reaper lock, " + where).isPresent();
        Map<Long, String> actions = new TreeMap<>();
        for (StaleTask s : got.orElseThrow()) actions.put(s.id(), s.action());
        assertThat(actions).as("reaped, " + where).isEqualTo(expected);
        for (var e : expected.entrySet()) {
            TaskModel t = m.tasks.get((int) (long) e.getKey() - 1);
            if (e.getValue().equals("requeue")) {
                requeue(m, t, "requeued", t.owner);
            } else {
                t.status = "quarantined";
                t.lastErrorPrefix = "quarantined: requeue budget " + MAX_REQUEUE + " exhausted; ";
                t.event("quarantined", t.owner, t.token);
            }
        }
    }

    private static void requeue(Model m, TaskModel t, String event, String by) {
        t.event(event, by, t.token);
        t.status = t.compensating ? "compensating" : "pending";
        t.owner = null;
        t.requeues++;
        t.runAt = m.clock;
        t.notDue = false;
    }

    private static void releaseAndStop(Model m, OwnerModel o, String where) {
        List<HeldLease> held = new ArrayList<>();
        Set<Long> expected = new HashSet<>();
        for (var e : o.held.entrySet()) {
            TaskModel t = m.tasks.get(e.getKey());
            held.add(new HeldLease(t.id, e.getValue(), LEASE));
            if (m.holds(o, t, e.getValue())) expected.add(t.id);
        }
        assertThat(store.releaseHeld(o.name, held, "test stop")).as("released, " + where).isEqualTo(expected);
        for (long id : expected) {
            TaskModel t = m.tasks.get((int) id - 1);
            t.status = t.compensating ? "compensating" : "pending";
            t.owner = null;
            t.attempts = Math.max(t.attempts - 1, 0);
            t.runAt = m.clock;
            t.notDue = false;
            t.event("released", o.name, t.token);
        }
        assertThat(nodes.markStopped(o.name, UUID.fromString(o.incarnation))).as("marked stopped, " + where).isTrue();
        o.stopped = true;
        o.down = true;
        o.held.clear();
        o.finished.clear();
    }

    private static void restart(Model m, OwnerModel o, String where) {
        o.incarnation = register(o.name);
        o.down = false;
        o.stopped = false;
        o.silent = false;
        o.held.clear();
        o.finished.clear();
        int recovered = 0;
        int quarantined = 0;
        for (TaskModel t : m.tasks) {
            if (!t.running() || !o.name.equals(t.owner)) continue;
            if (t.requeues < MAX_REQUEUE) {
                requeue(m, t, "recovered_on_startup", o.name);
                recovered++;
            } else {
                t.status = "quarantined";
                t.lastErrorPrefix = "quarantined: requeue budget " + MAX_REQUEUE + " exhausted; left running by a previous incarnation";
                t.event("quarantined", o.name, t.token);
                quarantined++;
            }
        }
        assertThat(store.recoverOwnedBy(o.name, MAX_REQUEUE, 100)).as("recovered, quarantined, " + where)
                .containsExactly(recovered, quarantined);
    }

    // ------------------------------------------------------------------ comparing

    private static void compare(Model m, String where) throws SQLException {
        try (Connection c = database.dataSource().getConnection(); Statement st = c.createStatement()) {
            try (ResultSet rs = st.executeQuery("""
                    SELECT id, status, owner_id, lease_token, attempts, requeue_count, last_error, dependencies_left,
                           lease_expires_at IS NOT NULL AS has_lease, lease_expires_at < now() AS expired,
                           finished_at IS NOT NULL AS finished, run_at <= now() AS due
                      FROM tasks ORDER BY id""")) {
                for (TaskModel t : m.tasks) {
                    assertThat(rs.next()).as("task %d exists, %s", t.id, where).isTrue();
                    String label = "task " + t.id + ", " + where;
                    assertThat(rs.getString("status")).as("status of " + label).isEqualTo(t.status);
                    assertThat(rs.getString("owner_id")).as("owner of " + label).isEqualTo(t.owner);
                    assertThat(rs.getLong("lease_token")).as("lease token of " + label).isEqualTo(t.token);
                    assertThat(rs.getInt("attempts")).as("attempts of " + label).isEqualTo(t.attempts);
                    assertThat(rs.getInt("requeue_count")).as("requeue count of " + label).isEqualTo(t.requeues);
                    assertThat(rs.getInt("dependencies_left")).as("dependencies left of " + label).isEqualTo(t.dependenciesLeft);
                    assertThat(rs.getBoolean("has_lease")).as("lease set iff running, " + label).isEqualTo(t.running());
                    if (t.running()) assertThat(rs.getBoolean("expired")).as("lease expired, " + label).isEqualTo(t.leaseExpired);
                    assertThat(rs.getBoolean("finished")).as("finished_at set iff terminal, " + label).isEqualTo(t.terminal());
                    if (t.waiting()) assertThat(rs.getBoolean("due")).as("due, " + label).isEqualTo(!t.notDue);
                    if (t.lastErrorPrefix != null) {
                        assertThat(rs.getString("last_error")).as("last_error of " + label).startsWith(t.lastErrorPrefix);
                    }
                }
                assertThat(rs.next()).as("no other task, " + where).isFalse();
            }
            // the events themselves, in the order written (one statement writes at most one per task)
            Map<Long, List<Ev>> events = new TreeMap<>();
            try (ResultSet rs = st.executeQuery("SELECT task_id, event, owner_id, lease_token FROM task_events ORDER BY id")) {
                while (rs.next()) {
                    events.computeIfAbsent(rs.getLong(1), k -> new ArrayList<>())
                            .add(new Ev(rs.getString(2), rs.getString(3), rs.getLong(4)));
                }
            }
            for (TaskModel t : m.tasks) {
                assertThat(events.getOrDefault(t.id, List.of())).as("events of task " + t.id + ", " + where).isEqualTo(t.events);
            }
            List<String> edges = new ArrayList<>();
            try (ResultSet rs = st.executeQuery("SELECT depends_on, task_id FROM task_dependencies ORDER BY task_id, depends_on")) {
                while (rs.next()) edges.add(rs.getLong(1) + "->" + rs.getLong(2));
            }
            List<String> expectedEdges = new ArrayList<>();
            for (TaskModel t : m.tasks) for (int d : t.edges) expectedEdges.add(m.tasks.get(d).id + "->" + t.id);
            assertThat(edges).as("dependencies not ended, " + where).isEqualTo(expectedEdges);
        }
    }

    private static void exec(String sql) throws SQLException {
        try (Connection c = database.dataSource().getConnection(); Statement st = c.createStatement()) {
            st.executeUpdate(sql);
        }
    }
}

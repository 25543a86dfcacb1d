package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/** Heartbeat, completion, failure and release are fenced by (owner, lease token, status running). */
class FencedWritesTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private TaskStore store;
    private long mine;
    private long taken;
    private long done;

    @BeforeEach
    void rows() {
        db.exec("TRUNCATE tasks, task_event_log");
        store = new TaskStore(db.database());
        mine = id("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts) VALUES ('noop', 'running', 'node-a', 3, 1) RETURNING id");
        taken = id("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts) VALUES ('noop', 'running', 'node-b', 4, 2) RETURNING id");
        done = id("INSERT INTO tasks (kind, status, owner_id, lease_token, attempts, finished_at) VALUES ('noop', 'succeeded', 'node-a', 5, 1, now()) RETURNING id");
    }

    private long id(String sql) {
        return ((Number) db.rows(sql).get(0).get("id")).longValue();
    }

    @Test
    void completionIsAcceptedOnlyForTheOwnersCurrentTokenOfARunningRow() {
        Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a", List.of(
                new Outcome.Success(mine, 3, "{\"ok\":true}"),
                new Outcome.Success(taken, 3, null),      // another owner's row (token of an older lease)
                new Outcome.Success(done, 5, null)));     // finished by node-a under token 5: a repeated write
        // the repeat is acknowledged without a second event (a retry after a COMMIT the node did not hear)
        assertThat(accepted).containsOnly(Map.entry(mine, TaskStatus.SUCCEEDED), Map.entry(done, TaskStatus.SUCCEEDED));
        assertThat(db.count("tasks WHERE status = 'running' AND owner_id = 'node-b' AND lease_token = 4")).isEqualTo(1);
        assertThat(db.count("task_events WHERE event = 'completion_refused'")).isEqualTo(1);
    }

    @Test
    void completionWithAStaleTokenChangesNothing() {
        assertThat(store.completeIfOwned("node-a", List.of(new Outcome.Success(mine, 2, null)))).isEmpty();
        assertThat(db.count("tasks WHERE id = " + mine + " AND status = 'running' AND lease_token = 3")).isEqualTo(1);
    }

    @Test
    void failureIsFencedTheSameWay() {
        Map<Long, TaskStatus> accepted = store.completeIfOwned("node-a", List.of(
                new Outcome.Failure(mine, 3, "boom", false, Duration.ofSeconds(1)),
                new Outcome.Failure(taken, 4, "not mine", true, Duration.ZERO)));
        assertThat(accepted).containsExactly(Map.entry(mine, TaskStatus.PENDING));
        assertThat(db.count("tasks WHERE id = " + taken + " AND status = 'running'")).isEqualTo(1);
    }

    @Test
    void heartbeatAndReleaseRefuseAnotherOwnersOrAFinishedRow() {
        Duration lease = Duration.ofMinutes(1);
        assertThat(store.heartbeat("node-a", mine, 3, lease, null, null)).isTrue();
        assertThat(store.heartbeat("node-a", taken, 4, lease, null, null)).isFalse();
        assertThat(store.heartbeat("node-a", done, 5, lease, null, null)).isFalse();
        assertThat(store.releaseHeld("node-a", List.of(new HeldLease(mine, 3, lease), new HeldLease(taken, 4, lease),
                new HeldLease(done, 5, lease)), "test")).containsExactly(mine);
        assertThat(db.count("tasks WHERE id = " + mine + " AND status = 'pending' AND owner_id IS NULL")).isEqualTo(1);
    }
}

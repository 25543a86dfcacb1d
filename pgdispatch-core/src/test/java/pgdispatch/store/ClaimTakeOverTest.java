package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TestDatabase;

/** A claim takes over expired leases only when asked to: most claims skip the scan of the running rows. */
class ClaimTakeOverTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final Map<String, Duration> lease = Map.of("noop", Duration.ofMinutes(10));

    @BeforeEach
    void expiredLease() {
        db.exec("TRUNCATE tasks, task_event_log");
        db.exec("INSERT INTO tasks (kind, status, owner_id, lease_token, lease_expires_at, attempts)"
                + " VALUES ('noop', 'running', 'ghost', 7, now() - interval '1 minute', 1)");
    }

    @Test
    void leavesAnExpiredLeaseAloneWhenNotAskedToTakeOver() {
        TaskStore store = new TaskStore(db.database());
        var claimed = store.claimDue(new ClaimRequest("node-a", List.of("default"), lease, 10, 3, false));
        assertThat(claimed).isEmpty();
        assertThat(db.rows("SELECT owner_id, lease_token FROM tasks")).containsExactly(Map.of("owner_id", "ghost", "lease_token", 7L));
        assertThat(db.count("task_events")).isZero();
    }

    @Test
    void takesOverAnExpiredLeaseWhenAsked() {
        TaskStore store = new TaskStore(db.database());
        var claimed = store.claimDue(new ClaimRequest("node-a", List.of("default"), lease, 10, 3));
        assertThat(claimed).singleElement().satisfies(t -> {
            assertThat(t.previousOwner()).isEqualTo("ghost");
            assertThat(t.leaseToken()).isEqualTo(8L);
        });
        assertThat(db.count("task_events WHERE event = 'claimed' AND detail->>'took_over_from' = 'ghost'")).isEqualTo(1);
    }

    @Test
    void planOfAClaimWithoutTakeOverDoesNotReadTheRunningRows() {
        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, 100)");
        List<String> plan = new TaskStore(db.database())
                .explainClaim(new ClaimRequest("node-a", List.of("default"), lease, 10, 3, false));
        assertThat(String.join("\n", plan)).doesNotContain("tasks_running_owner_idx").doesNotContain("Seq Scan on tasks t ");
    }
}

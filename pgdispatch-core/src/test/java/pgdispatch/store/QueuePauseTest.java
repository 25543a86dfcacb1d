package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/** Pausing a queue, as the claim of any owner sees it: the claim statement itself reads the pause. */
class QueuePauseTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final Map<String, Duration> LEASES = Map.of(TaskRows.KIND, Duration.ofMinutes(5));
    private QueueStore queues;
    private TaskStore store;

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, dispatcher_queues");
        queues = new QueueStore(db.database().dataSource());
        store = new TaskStore(db.database());
    }

    private List<ClaimedTask> claim(String owner, String... queueNames) {
        return store.claimDue(new ClaimRequest(owner, List.of(queueNames), LEASES, 100, 3, true));
    }

    @Test
    void noOwnerClaimsFromAPausedQueueWhileOthersGoOn() {
        long mail = TaskRows.pending(db, "mail", TaskRows.KIND);
        long reports = TaskRows.pending(db, "reports", TaskRows.KIND);

        QueueStore.Change c = queues.pause("mail", "ops:alice", "SMTP relay down");

        assertThat(c.changed()).isTrue();
        assertThat(c.state()).extracting(QueueStore.QueueState::paused, QueueStore.QueueState::changedBy,
                QueueStore.QueueState::reason).containsExactly(true, "ops:alice", "SMTP relay down");
        assertThat(claim("node-a", "mail", "reports")).extracting(ClaimedTask::id).containsExactly(reports);
        assertThat(claim("node-b", "mail")).isEmpty();
        assertThat(TaskRows.row(db, mail).get("status")).isEqualTo("pending");

        assertThat(queues.resume("mail", "ops:bob", null).changed()).isTrue();
        assertThat(claim("node-b", "mail")).extracting(ClaimedTask::id).containsExactly(mail);
    }

    @Test
    void anExpiredLeaseInAPausedQueueIsNotTakenOver() {
        long expired = TaskRows.runningLeaseExpired(db, "node-dead", Duration.ofMinutes(1));
        queues.pause(TaskRows.QUEUE, "t", null);

        assertThat(claim("node-a", TaskRows.QUEUE)).isEmpty();
        assertThat(TaskRows.row(db, expired).get("owner_id")).isEqualTo("node-dead");

        queues.resume(TaskRows.QUEUE, "t", null);
        assertThat(claim("node-a", TaskRows.QUEUE)).extracting(ClaimedTask::id).containsExactly(expired);
    }

    @Test
    void runningTasksOfAPausedQueueCompleteNormally() {
        long id = TaskRows.pending(db);
        ClaimedTask claimed = claim("node-a", TaskRows.QUEUE).get(0);
        queues.pause(TaskRows.QUEUE, "t", null);

        Map<Long, TaskStatus> done = store.completeIfOwned("node-a",
                List.of(new Outcome.Success(claimed.id(), claimed.leaseToken(), null)));

        assertThat(done).containsEntry(id, TaskStatus.SUCCEEDED);
    }

    @Test
    void pausingTwiceAndResumingAnActiveQueueChangeNothingAndSaySo() {
        queues.pause("mail", "ops:alice", "first");
        QueueStore.Change again = queues.pause("mail", "ops:bob", "second");
        assertThat(again.changed()).isFalse();
        assertThat(again.state().reason()).as("the first pause's record is kept").isEqualTo("first");
        assertThat(again.state().changedBy()).isEqualTo("ops:alice");

        QueueStore.Change resumeActive = queues.resume("never-paused", "ops:bob", null);
        assertThat(resumeActive.changed()).isFalse();
        assertThat(resumeActive.state().paused()).isFalse();
        assertThat(queues.paused()).containsExactly("mail");
    }

    @Test
    void aBadQueueNameIsRefusedNamingTheRule() {
        assertThatThrownBy(() -> queues.pause("no spaces", "t", null)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("queue='no spaces' must be 1-100 of letters, digits, _ . : - starting with a letter or digit");
        assertThat(db.count("dispatcher_queues")).isZero();
    }

    @Test
    void overviewListsQueuesWithTasksPausedRowsAndLiveNodes() {
        TaskRows.pending(db, "mail", TaskRows.KIND);
        TaskRows.running(db, "node-a");
        queues.pause("empty-but-paused", "t", "drain");
        TaskRows.node(db, "node-a", Duration.ZERO);

        List<QueueStore.QueueOverview> all = queues.overview(Duration.ofMinutes(1));

        assertThat(all).extracting(o -> o.state().queue(), o -> o.state().paused(), QueueStore.QueueOverview::pending,
                QueueStore.QueueOverview::running).containsExactly(
                org.assertj.core.groups.Tuple.tuple("default", false, 0L, 1L),
                org.assertj.core.groups.Tuple.tuple("empty-but-paused", true, 0L, 0L),
                org.assertj.core.groups.Tuple.tuple("mail", false, 1L, 0L));
        assertThat(all.get(0).liveNodes()).containsExactly("node-a");
    }
}

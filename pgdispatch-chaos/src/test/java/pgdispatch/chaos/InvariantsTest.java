package pgdispatch.chaos;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * One crafted history per rule of the chaos checker that breaks it, beside a near twin that keeps it
 * (issue 13: a checker is only as good as the histories it is shown to reject). Each case names the rule
 * as the summary's detail does ({@code counter.rule}); docs/RELIABILITY.md lists the same names.
 */
class InvariantsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String A = "node-a";
    private static final String B = "node-b";
    private static final String QUARANTINE_ERROR = "quarantined: requeue budget 3 exhausted; lease expired at ...";

    /** A crafted run: what the workload enqueued, the rows, the events; ids in the order added. */
    static final class Run {
        final Map<Long, Invariants.Expected> expected = new HashMap<>();
        final List<Invariants.Row> rows = new ArrayList<>();
        final List<Invariants.Event> events = new ArrayList<>();
        private long eventId;

        Run expect(long id, String kind, long sleepMs, int failTimes, int maxAttempts) {
            expected.put(id, new Invariants.Expected("1/1/" + id, kind, sleepMs, failTimes, maxAttempts));
            return this;
        }

        Run row(long id, String status, long attempts, long maxAttempts, long requeues, long token, String owner,
                String lastError, String result) {
            Invariants.Expected e = expected.get(id);
            rows.add(new Invariants.Row(id, e == null ? null : e.key(), status, attempts, maxAttempts, requeues, token, owner,
                    lastError, result));
            return this;
        }

        Run rowWithKey(long id, String key, String status, long token, String owner) {
            rows.add(new Invariants.Row(id, key, status, 1, 5, 0, token, owner, null, null));
            return this;
        }

        Run event(long task, String event, String owner, Long token, String detail) {
            try {
                JsonNode d = detail == null ? null : JSON.readTree(detail);
                events.add(new Invariants.Event(task, ++eventId, event, owner, token, d));
            } catch (Exception e) {
                throw new IllegalArgumentException(detail, e);
            }
            return this;
        }

        /** Claimed by A, then taken over three times (B, A, B): requeue count 3, token 4, attempt 4. */
        Run threeTakeOvers(long task) {
            return claimed(task, A, 1).tookOver(task, B, 2, A).tookOver(task, A, 3, B).tookOver(task, B, 4, A);
        }

        Run claimed(long task, String owner, long token) {
            return event(task, "claimed", owner, token, "{\"attempt\": 1}");
        }

        Run tookOver(long task, String owner, long token, String from) {
            return event(task, "claimed", owner, token, "{\"took_over_from\": \"" + from + "\", \"reason\": \"lease expired\"}");
        }

        /** A noop task that ran once and succeeded: the base most cases change one thing in. */
        Run noopDone(long id) {
            return expect(id, "noop", 0, 0, 5).claimed(id, A, 1).event(id, "succeeded", A, 1L, null)
                    .row(id, "succeeded", 1, 5, 0, 1, A, null, null);
        }

        Invariants.Verdict verdict(Map<String, Long> minimum) {
            return new Invariants(3, minimum).check(expected, rows, events);
        }

        Invariants.Verdict verdict() {
            return verdict(Map.of());
        }
    }

    private static Run run(Consumer<Run> build) {
        Run r = new Run();
        build.accept(r);
        return r;
    }

    static Stream<Arguments> rules() {
        return Stream.of(
                // ---- lost
                Arguments.of("lost.missing_task",
                        run(r -> r.noopDone(1)),
                        run(r -> r.noopDone(1).expect(2, "noop", 0, 0, 5))),
                Arguments.of("lost.unknown_task", // a finished task replaced by a look-alike with a clean history
                        run(r -> r.noopDone(1)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(9, A, 1).event(9, "succeeded", A, 1L, null)
                                .row(9, "succeeded", 1, 5, 0, 1, A, null, null))),
                Arguments.of("lost.events_without_task",
                        run(r -> r.noopDone(1)),
                        run(r -> r.noopDone(1).claimed(7, A, 1))),
                Arguments.of("lost.claim_token_gap",
                        run(r -> r.noopDone(1)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 2).event(1, "succeeded", A, 2L, null)
                                .row(1, "succeeded", 1, 5, 0, 2, A, null, null))),
                Arguments.of("lost.takeover_of_non_running",
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A).event(1, "succeeded", B, 2L, null)
                                .row(1, "succeeded", 2, 5, 1, 2, B, null, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "requeued", A, 1L, null)
                                .tookOver(1, B, 2, A).event(1, "succeeded", B, 2L, null)
                                .row(1, "succeeded", 2, 5, 2, 2, B, null, null))),
                Arguments.of("lost.requeue_history_mismatch",
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "requeued", A, 1L, null)
                                .claimed(1, B, 2).event(1, "succeeded", B, 2L, null).row(1, "succeeded", 2, 5, 1, 2, B, null, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "requeued", B, 1L, null)
                                .claimed(1, B, 2).event(1, "succeeded", B, 2L, null).row(1, "succeeded", 2, 5, 1, 2, B, null, null))),
                Arguments.of("lost.quarantine_history_mismatch",
                        run(r -> r.expect(1, "noop", 0, 0, 5).threeTakeOvers(1).event(1, "quarantined", B, 4L, "{\"by\": \"reaper\"}")
                                .row(1, "quarantined", 4, 5, 3, 4, B, QUARANTINE_ERROR, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).threeTakeOvers(1).event(1, "quarantined", B, 3L, "{\"by\": \"reaper\"}")
                                .row(1, "quarantined", 4, 5, 3, 4, B, QUARANTINE_ERROR, null))),
                Arguments.of("lost.unknown_event",
                        run(r -> r.noopDone(1)),
                        run(r -> r.noopDone(1).event(1, "teleported", A, 1L, null))),
                Arguments.of("lost.row_differs_from_history", // a take-over that does not count its requeue
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A).event(1, "succeeded", B, 2L, null)
                                .row(1, "succeeded", 2, 5, 1, 2, B, null, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A).event(1, "succeeded", B, 2L, null)
                                .row(1, "succeeded", 2, 5, 0, 2, B, null, null))),
                // ---- double_accepted
                Arguments.of("double_accepted.duplicate_task",
                        run(r -> r.noopDone(1).expect(2, "noop", 0, 0, 5).claimed(2, A, 1).event(2, "succeeded", A, 1L, null)
                                .rowWithKey(2, "1/1/2", "succeeded", 1, A)),
                        run(r -> r.noopDone(1).expect(2, "noop", 0, 0, 5).claimed(2, A, 1).event(2, "succeeded", A, 1L, null)
                                .rowWithKey(2, "1/1/1", "succeeded", 1, A))),
                Arguments.of("double_accepted.reclaim_of_foreign_task",
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1)
                                .event(1, "claimed", A, 2L, "{\"reason\": \"reclaimed after a lost claim response\"}")
                                .event(1, "succeeded", A, 2L, null).row(1, "succeeded", 1, 5, 0, 2, A, null, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1)
                                .event(1, "claimed", B, 2L, "{\"reason\": \"reclaimed after a lost claim response\"}")
                                .event(1, "succeeded", B, 2L, null).row(1, "succeeded", 1, 5, 0, 2, B, null, null))),
                Arguments.of("double_accepted.claim_of_non_pending",
                        run(r -> r.noopDone(1)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).claimed(1, B, 2).event(1, "succeeded", B, 2L, null)
                                .row(1, "succeeded", 2, 5, 0, 2, B, null, null))),
                Arguments.of("double_accepted.accepted_from_superseded_owner", // a stale token of the same owner
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "requeued", A, 1L, null).claimed(1, A, 2)
                                .event(1, "succeeded", A, 2L, null).event(1, "completion_refused", A, 1L, null)
                                .row(1, "succeeded", 2, 5, 1, 2, A, null, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "requeued", A, 1L, null).claimed(1, A, 2)
                                .event(1, "succeeded", A, 1L, null).event(1, "completion_refused", A, 2L, null)
                                .row(1, "succeeded", 2, 5, 1, 2, A, null, null))),
                Arguments.of("double_accepted.succeeded_events",
                        run(r -> r.noopDone(1)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "succeeded", A, 1L, null)
                                .row(1, "failed", 1, 5, 0, 1, A, "x", null))),
                Arguments.of("double_accepted.final_outcomes",
                        run(r -> r.noopDone(1)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).event(1, "succeeded", A, 1L, null)
                                .event(1, "retried_by_operator", null, 1L, null).claimed(1, A, 2).event(1, "succeeded", A, 2L, null)
                                .row(1, "succeeded", 1, 5, 0, 2, A, null, null))),
                // ---- over_budget
                Arguments.of("over_budget.requeue_count",
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A).tookOver(1, A, 3, B)
                                .tookOver(1, B, 4, A).event(1, "succeeded", B, 4L, null).row(1, "succeeded", 4, 5, 3, 4, B, null, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A).tookOver(1, A, 3, B)
                                .tookOver(1, B, 4, A).tookOver(1, A, 5, B).event(1, "succeeded", A, 5L, null)
                                .row(1, "succeeded", 5, 5, 4, 5, A, null, null))),
                Arguments.of("over_budget.attempts",
                        run(r -> r.expect(1, "fail", 0, 1, 2).claimed(1, A, 1).event(1, "retry_scheduled", A, 1L, null)
                                .claimed(1, A, 2).event(1, "succeeded", A, 2L, null)
                                .row(1, "succeeded", 2, 2, 0, 2, A, null, "{\"succeeded_on_attempt\": 2}")),
                        run(r -> r.expect(1, "noop", 0, 0, 5).row(1, "cancelled", Integer.MAX_VALUE, 1, 0, 0, null, null, null)
                                .event(1, "cancelled", null, 0L, null))),
                Arguments.of("over_budget.retry_past_budget",
                        run(r -> r.expect(1, "fail", 0, 1, 2).claimed(1, A, 1).event(1, "retry_scheduled", A, 1L, null)
                                .claimed(1, A, 2).event(1, "succeeded", A, 2L, null)
                                .row(1, "succeeded", 2, 2, 0, 2, A, null, "{\"succeeded_on_attempt\": 2}")),
                        run(r -> r.expect(1, "fail", 0, 1, 1).claimed(1, A, 1).event(1, "retry_scheduled", A, 1L, null)
                                .claimed(1, A, 2).event(1, "succeeded", A, 2L, null)
                                .row(1, "succeeded", 2, 1, 0, 2, A, null, "{\"succeeded_on_attempt\": 2}"))),
                Arguments.of("over_budget.unexplained_quarantine",
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A).tookOver(1, A, 3, B)
                                .tookOver(1, B, 4, A).event(1, "quarantined", B, 4L, "{\"by\": \"reaper\"}")
                                .row(1, "quarantined", 4, 5, 3, 4, B, QUARANTINE_ERROR, null)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A)
                                .event(1, "quarantined", B, 2L, "{\"by\": \"reaper\"}")
                                .row(1, "quarantined", 2, 5, 1, 2, B, QUARANTINE_ERROR, null))),
                // ---- stuck
                Arguments.of("stuck.not_terminal",
                        run(r -> r.noopDone(1)),
                        run(r -> r.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).row(1, "running", 1, 5, 0, 1, A, null, null))),
                // ---- wrong_result
                Arguments.of("wrong_result.outcome_differs", // the handler never ran, success reported
                        run(r -> r.expect(1, "sleep", 400, 0, 5).claimed(1, A, 1).event(1, "succeeded", A, 1L, null)
                                .row(1, "succeeded", 1, 5, 0, 1, A, null, "{\"slept_ms\": 400}")),
                        run(r -> r.expect(1, "sleep", 400, 0, 5).claimed(1, A, 1).event(1, "succeeded", A, 1L, null)
                                .row(1, "succeeded", 1, 5, 0, 1, A, null, null))),
                Arguments.of("wrong_result.outcome_differs", // a fail task that succeeded before its failures were used up
                        run(r -> r.expect(1, "fail", 0, 1, 5).claimed(1, A, 1).event(1, "retry_scheduled", A, 1L, null)
                                .claimed(1, A, 2).event(1, "succeeded", A, 2L, null)
                                .row(1, "succeeded", 2, 5, 0, 2, A, null, "{\"succeeded_on_attempt\": 2}")),
                        run(r -> r.expect(1, "fail", 0, 1, 5).claimed(1, A, 1).event(1, "succeeded", A, 1L, null)
                                .row(1, "succeeded", 1, 5, 0, 1, A, null, "{\"succeeded_on_attempt\": 1}"))),
                Arguments.of("wrong_result.outcome_differs", // a noop that failed
                        run(r -> r.expect(1, "fail", 0, 2, 1).claimed(1, A, 1)
                                .event(1, "failed", A, 1L, "{\"permanent\": false}")
                                .row(1, "failed", 1, 1, 0, 1, A, "java.lang.IllegalStateException: fail: attempt 1 fails as asked", null)),
                        run(r -> r.expect(1, "noop", 0, 0, 1).claimed(1, A, 1)
                                .event(1, "failed", A, 1L, "{\"permanent\": false}")
                                .row(1, "failed", 1, 1, 0, 1, A, "java.lang.IllegalStateException: boom", null))),
                Arguments.of("wrong_result.outcome_differs", // a faulty handler may end either way; a sleep may not
                        run(r -> r.expect(1, "chaos.hang", 0, 0, 1).claimed(1, A, 1)
                                .event(1, "failed", A, 1L, "{\"permanent\": false}")
                                .row(1, "failed", 1, 1, 0, 1, A, "timed out after 2000 ms", null)),
                        run(r -> r.expect(1, "sleep", 20, 0, 1).claimed(1, A, 1)
                                .event(1, "failed", A, 1L, "{\"permanent\": false}")
                                .row(1, "failed", 1, 1, 0, 1, A, "timed out after 2000 ms", null))),
                Arguments.of("wrong_result.failed_with_attempts_left",
                        run(r -> r.expect(1, "fail", 0, 2, 2).claimed(1, A, 1).event(1, "retry_scheduled", A, 1L, null)
                                .claimed(1, A, 2).event(1, "failed", A, 2L, "{\"permanent\": false}")
                                .row(1, "failed", 2, 2, 0, 2, A, "java.lang.IllegalStateException: fail: attempt 2 fails as asked", null)),
                        run(r -> r.expect(1, "fail", 0, 2, 5).claimed(1, A, 1)
                                .event(1, "failed", A, 1L, "{\"permanent\": false}")
                                .row(1, "failed", 1, 5, 0, 1, A, "java.lang.IllegalStateException: fail: attempt 1 fails as asked", null))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("rules")
    void ruleHoldsForItsTwinAndIsBrokenByItsCraftedHistory(String rule, Run fine, Run broken) {
        Invariants.Verdict ok = fine.verdict();
        assertThat(ok.byRule()).as("the twin that keeps %s", rule).isEmpty();
        assertThat(ok.ok()).isTrue();

        Invariants.Verdict bad = broken.verdict();
        assertThat(bad.byRule()).as("the history that breaks %s", rule).containsKey(rule);
        assertThat(bad.examples().get(rule)).isNotEmpty();
        assertThat(bad.ok()).isFalse();
    }

    @Test
    void budgetSumIsLongSoAHugeRequeueCountDoesNotWrapIntoAFalseAttemptsViolation() {
        // max_attempts + requeue_count in int is 1000 + 2^31 - 1: negative, and every attempts count exceeds it
        Run r = run(x -> x.expect(1, "noop", 0, 0, 1000).event(1, "cancelled", null, 0L, null)
                .row(1, "cancelled", 0, 1000, Integer.MAX_VALUE, 0, null, null, null));

        assertThat(r.verdict().byRule()).doesNotContainKey("over_budget.attempts").containsKey("over_budget.requeue_count");
    }

    @Test
    void runWithoutEveryFaultEffectFailsNamingTheMissingOnes() {
        Run r = run(x -> x.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A)
                .event(1, "lease_lost", A, 1L, null).event(1, "completion_refused", A, 1L, null)
                .event(1, "succeeded", B, 2L, null).row(1, "succeeded", 2, 5, 1, 2, B, null, null));
        Map<String, Long> one = Map.of("takeovers", 1L, "refusals", 1L, "requeues", 1L, "zombie_refusals", 1L);

        Invariants.Verdict v = r.verdict(one);

        assertThat(v.byRule()).isEmpty();
        assertThat(v.unexercised()).containsExactly("requeues 0 < 1");
        assertThat(v.ok()).isFalse();
        assertThat(v.effect("takeovers")).isEqualTo(1);
        assertThat(v.effect("refusals")).isEqualTo(1);
        assertThat(v.effect("zombie_refusals")).isEqualTo(1);

        Run withRequeue = run(x -> x.expect(1, "noop", 0, 0, 5).claimed(1, A, 1).tookOver(1, B, 2, A)
                .event(1, "lease_lost", A, 1L, null).event(1, "completion_refused", A, 1L, null)
                .event(1, "requeued", B, 2L, null).claimed(1, A, 3).event(1, "succeeded", A, 3L, null)
                .row(1, "succeeded", 3, 5, 2, 3, A, null, null));
        assertThat(withRequeue.verdict(one).unexercised()).isEmpty();
        assertThat(withRequeue.verdict(one).ok()).isTrue();
    }
}

-- V10: leases earned by progress (issue 14). The node's renewal keeps a task's lease alive but no longer
-- counts as its progress: last_heartbeat_at moves only when the claim starts an attempt or the handler
-- reports progress (TaskContext.heartbeat). The columns below keep the cadence of those reports on the
-- row (a count and a moving average; no row per heartbeat), the renewals and extensions of the attempt.
-- None is indexed, so renewals and heartbeats stay HOT updates (fillfactor 80, V2). All are nullable or
-- have constant defaults: catalog-only changes, no rewrite.
ALTER TABLE tasks
    -- progress reports (heartbeats) of the current attempt; the claim resets it
    ADD COLUMN progress_count      integer NOT NULL DEFAULT 0,
    -- moving average (weight 0.3 on the newest) of the intervals between this attempt's reports, in ms
    ADD COLUMN progress_interval_ms double precision,
    -- node renewals of the current attempt's lease
    ADD COLUMN renew_count         integer NOT NULL DEFAULT 0,
    -- lease extensions granted to the current attempt (TaskContext.extendLease), bounded per attempt
    ADD COLUMN extension_count     integer NOT NULL DEFAULT 0,
    -- the last extension asked for quiet until then: not judged stuck before
    ADD COLUMN quiet_until         timestamptz;

-- The stuck rule, in one place: the renewal statement and the status figures both use it. A running
-- attempt is stuck when its handler has been silent (no progress report since p_last) longer than its
-- bound and no granted extension still covers it. The bound:
--   * two reports or more (a cadence is known): greatest(p_floor_ms, p_factor x the average interval);
--   * one report, or none while the kind opts in (p_judge_silent): p_stale_ms (TASK_STALE_S);
--   * no report and no opt-in: none (judged only by the handler's timeout(), as before V10).
-- Inlined by the planner (a single SELECT, STABLE for now()).
CREATE OR REPLACE FUNCTION pgdispatch_silence_bound_ms(
    p_count integer, p_interval_ms double precision, p_factor double precision, p_floor_ms bigint,
    p_stale_ms bigint, p_judge_silent boolean)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_count >= 2 AND p_interval_ms IS NOT NULL THEN greatest(p_floor_ms::float8, p_factor * p_interval_ms)
                WHEN p_count = 1 OR p_judge_silent THEN p_stale_ms::float8
           END
$$;

CREATE OR REPLACE FUNCTION pgdispatch_is_stuck(
    p_last timestamptz, p_quiet_until timestamptz, p_count integer, p_interval_ms double precision,
    p_factor double precision, p_floor_ms bigint, p_stale_ms bigint, p_judge_silent boolean)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_quiet_until < now(), true)
       AND extract(epoch FROM now() - p_last) * 1000
           > pgdispatch_silence_bound_ms(p_count, p_interval_ms, p_factor, p_floor_ms, p_stale_ms, p_judge_silent)
$$;

-- New events: stuck (the owner's renewal judged the attempt stuck and ended it by its kind's policy),
-- lease_extended / extension_refused (TaskContext.extendLease). The list is a stable contract
-- (docs/TASK_LEASES.md); NOT VALID like the other guards: old rows are not re-checked.
ALTER TABLE task_events
    DROP CONSTRAINT task_events_event_check,
    ADD CONSTRAINT task_events_event_check CHECK (event IN (
        'claimed', 'succeeded', 'retry_scheduled', 'failed', 'requeued',
        'quarantined', 'lease_lost', 'completion_refused', 'recovered_on_startup',
        'released', 'cancelled', 'retried_by_operator',
        'stuck', 'lease_extended', 'extension_refused')) NOT VALID;

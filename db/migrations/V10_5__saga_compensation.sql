-- V10_5: saga compensation (issue 14, item 7). A kind whose handler declares compensate(ctx) does not
-- end as failed (attempts exhausted, PermanentFailure, stuck on the last attempt) nor as cancelled
-- after it had started (attempts > 0): it goes to 'compensating', claimable like 'pending', and its
-- compensation runs as its own leased, fenced, retried step (status 'running' with compensating = true,
-- under the same claim/renew/complete statements and lease token). The step ends 'compensated' (a new
-- terminal state) or, once the step exhausts its own attempts (max_attempts again, counted afresh),
-- 'quarantined' with both errors kept: last_error stays the original one, compensation_error is the
-- compensation's. Columns with constant defaults: catalog-only changes, no rewrite; none is indexed,
-- so renewals stay HOT updates.
ALTER TABLE tasks
    -- set by every claim: the claiming node's handler for this kind declares compensate(ctx)
    ADD COLUMN compensable           boolean NOT NULL DEFAULT false,
    -- the row is in its compensation phase (from entering 'compensating' to its terminal state)
    ADD COLUMN compensating          boolean NOT NULL DEFAULT false,
    -- attempts of the original run when compensation began (attempts then counts compensation attempts)
    ADD COLUMN attempts_before_compensation integer,
    -- the last error of the compensation step (last_error keeps the original error)
    ADD COLUMN compensation_error    text;

ALTER TABLE tasks
    DROP CONSTRAINT tasks_status_check,
    ADD CONSTRAINT tasks_status_check CHECK (status IN (
        'pending', 'running', 'succeeded', 'failed', 'cancelled', 'quarantined',
        'compensating', 'compensated')) NOT VALID;

-- compensation_started: a claim of the compensation step (also a take-over of its expired lease);
-- compensated: the step succeeded; compensation_failed: it failed with attempts left (retried after
-- the back-off). Exhausted, the row is quarantined ('quarantined', detail.by = 'compensation').
ALTER TABLE task_events
    DROP CONSTRAINT task_events_event_check,
    ADD CONSTRAINT task_events_event_check CHECK (event IN (
        'claimed', 'succeeded', 'retry_scheduled', 'failed', 'requeued',
        'quarantined', 'lease_lost', 'completion_refused', 'recovered_on_startup',
        'released', 'cancelled', 'retried_by_operator',
        'stuck', 'lease_extended', 'extension_refused',
        'compensation_started', 'compensated', 'compensation_failed')) NOT VALID;

-- The compensation rule, in one place, whatever statement ends an attempt (the runtime's failure, the
-- renewal's stuck judgement, an operator's cancel, the reaper, startup recovery, a drain, plain SQL):
--   * an attempt of a compensable kind that would end failed, or cancelled after it had started
--     (attempts > 0), goes to 'compensating' instead, due now, owner cleared, attempts and requeue
--     count reset (the step's own budget), the original attempts kept;
--   * in the compensation phase, a step that would go back to 'pending' (retry, release, requeue)
--     goes back to 'compensating'; one that would end 'failed' is 'quarantined'; 'succeeded' is
--     'compensated'; the step's error goes to compensation_error, last_error keeps the original.
--     A quarantine by the reaper or an operator stays one, its reason in last_error as usual.
-- Called only when a compensable or compensating row changes status (the trigger's WHEN): renewals,
-- heartbeats and every row of other kinds never run it.
CREATE OR REPLACE FUNCTION pgdispatch_compensation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT OLD.compensating THEN
        IF OLD.compensable AND OLD.status IN ('running', 'pending')
           AND (NEW.status = 'failed' OR (NEW.status = 'cancelled' AND OLD.attempts > 0)) THEN
            NEW.status := 'compensating';
            NEW.compensating := true;
            NEW.attempts_before_compensation := OLD.attempts;
            NEW.attempts := 0;
            NEW.requeue_count := 0;
            NEW.owner_id := NULL;
            NEW.lease_expires_at := NULL;
            NEW.finished_at := NULL;
            NEW.run_at := now();
            NEW.compensation_error := NULL;
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'running' OR NOT NEW.compensating THEN
        RETURN NEW;  -- claimed, or an operator's retry / quarantine of a waiting row
    END IF;
    -- the step's own failure (or stuck judgement): its error is the compensation's; a quarantine by the
    -- reaper or an operator writes its reason to last_error as for any task (the original error stays in
    -- the failed / cancelled event that began the compensation)
    IF NEW.status IN ('pending', 'failed') AND NEW.last_error IS DISTINCT FROM OLD.last_error THEN
        NEW.compensation_error := NEW.last_error;
        NEW.last_error := OLD.last_error;
    END IF;
    NEW.status := CASE NEW.status WHEN 'pending' THEN 'compensating'
                                  WHEN 'failed' THEN 'quarantined'
                                  WHEN 'succeeded' THEN 'compensated'
                                  ELSE NEW.status END;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_compensation
    BEFORE UPDATE OF status ON tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND (OLD.compensable OR OLD.compensating))
    EXECUTE FUNCTION pgdispatch_compensation();

-- V13_8: tasks_trail (V13) must never make a transition fail. A reservation is written only by
-- pgdispatch's claim and completion (ids from the log's own sequence, never stored twice), but a row
-- inserted or edited by plain SQL can carry any claim_event_id / done_event_id, one that names a row the
-- log already holds. V13's function then failed with a unique violation in every statement that changed
-- the task: the node's failure write, the reaper's requeue, an operator's cancel, each retried forever.
-- Now such a row is written under a fresh id instead (it sorts after the task's earlier events, which a
-- forged reservation cannot promise anyway); a reservation that is free keeps its id, as before.
CREATE OR REPLACE FUNCTION pgdispatch_trail() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.claim_event_id IS NOT NULL THEN
        INSERT INTO task_event_log (id, task_id, event, owner_id, lease_token, at, detail) OVERRIDING SYSTEM VALUE
        VALUES (OLD.claim_event_id, OLD.id, 'claimed', OLD.owner_id, OLD.lease_token, OLD.started_at,
                jsonb_build_object('attempt', OLD.attempts))
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
            INSERT INTO task_event_log (task_id, event, owner_id, lease_token, at, detail)
            VALUES (OLD.id, 'claimed', OLD.owner_id, OLD.lease_token, OLD.started_at,
                    jsonb_build_object('attempt', OLD.attempts));
        END IF;
        IF NEW.claim_event_id IS NOT DISTINCT FROM OLD.claim_event_id THEN
            NEW.claim_event_id := NULL;
        END IF;
    END IF;
    IF OLD.done_event_id IS NOT NULL THEN
        INSERT INTO task_event_log (id, task_id, event, owner_id, lease_token, at) OVERRIDING SYSTEM VALUE
        VALUES (OLD.done_event_id, OLD.id, 'succeeded', OLD.owner_id, OLD.lease_token, OLD.finished_at)
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
            INSERT INTO task_event_log (task_id, event, owner_id, lease_token, at)
            VALUES (OLD.id, 'succeeded', OLD.owner_id, OLD.lease_token, OLD.finished_at);
        END IF;
        IF NEW.done_event_id IS NOT DISTINCT FROM OLD.done_event_id THEN
            NEW.done_event_id := NULL;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

-- V11_1: pausing a queue. One row per queue an operator has paused or resumed; a queue without a row
-- is not paused. The claim reads this table in the same statement that takes tasks, so a pause holds
-- from the next claim of every node on (no cache to expire); running tasks finish normally.
CREATE TABLE dispatcher_queues (
    queue      text PRIMARY KEY
               CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(queue) <= 100),
    paused     boolean     NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now(),
    -- who paused or resumed it (an operator name, a host, "dashboard"), and why: shown by `queues list`
    changed_by text,
    reason     text
);

-- A resumed queue may hold due tasks that no insert will announce: wake the nodes serving it, on the
-- same channel and with the same payload (the queue name) as the insert trigger of V6. Pausing needs
-- no wake-up: the next claim reads the row.
CREATE OR REPLACE FUNCTION pgdispatch_notify_resumed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgdispatch_wakeup', NEW.queue);
    RETURN NULL;
END;
$$;

CREATE TRIGGER dispatcher_queues_notify_resumed
    AFTER UPDATE ON dispatcher_queues
    FOR EACH ROW WHEN (OLD.paused AND NOT NEW.paused)
    EXECUTE FUNCTION pgdispatch_notify_resumed();

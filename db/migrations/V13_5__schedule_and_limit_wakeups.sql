-- V13_5: tell the nodes when schedules or concurrency limits change, so an idle node need not re-read
-- them on a timer. Same channel as the task wake-ups (V6), payloads that no queue name can take (a queue
-- name starts with a letter or digit): ':schedules' wakes every node's Scheduler, which then reads the
-- due schedules and its next fire time; ':limits' makes every node's claim loop re-read the limit keys
-- before its next claim. Whoever changes the rows (CLI, dashboard, code declarations, plain SQL) sends
-- them, at commit. A node whose LISTEN connection is down falls back to its timers (docs/ARCHITECTURE.md).

-- One function for both tables: the trigger names the payload (TG_ARGV[0]).
CREATE OR REPLACE FUNCTION pgdispatch_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgdispatch_wakeup', TG_ARGV[0]);
    RETURN NULL;
END;
$$;

-- Schedules: only what can bring a fire time closer: a new enabled schedule, one re-enabled, one whose
-- next fire time was cleared (timing changed, re-enabled: the Scheduler places it) or moved earlier (an
-- operator, a test). The Scheduler's own steps move next_fire_at later, or from NULL to a value: no
-- wake-up, so a firing schedule does not wake every node at each fire time. pg_notify folds the same
-- payload within one transaction into one notification.
CREATE TRIGGER schedules_notify_insert
    AFTER INSERT ON schedules
    FOR EACH ROW WHEN (NEW.enabled)
    EXECUTE FUNCTION pgdispatch_notify_change(':schedules');

CREATE TRIGGER schedules_notify_update
    AFTER UPDATE ON schedules
    FOR EACH ROW WHEN (NEW.enabled AND (NOT OLD.enabled OR NEW.next_fire_at IS NULL
                                         OR NEW.next_fire_at < OLD.next_fire_at))
    EXECUTE FUNCTION pgdispatch_notify_change(':schedules');

-- Limits: every change (they change rarely, by an operator; the claim loop's keys follow inserts and
-- deletes), one notification per statement.
CREATE TRIGGER concurrency_limits_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON concurrency_limits
    FOR EACH STATEMENT
    EXECUTE FUNCTION pgdispatch_notify_change(':limits');

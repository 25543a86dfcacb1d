-- V9 (issue 13): a run_at the schema should refuse, and an audit trail the runtime role could rewrite.

-- run_at = 'infinity' or '-infinity' is a timestamptz PostgreSQL accepts, but no task runs at either:
-- 'infinity' is never due, '-infinity' sorts before every real time, and every reader that turns it
-- into an instant or a lag (status, tasks list/show, the lag and depth gauges) failed on it. NOT VALID
-- like V3's guards: rows an existing installation holds stay (the readers cope with them), new ones
-- are refused. The claim leaves such legacy rows alone; see TaskStore.CLAIM_TEXT.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_run_at_finite_check CHECK (isfinite(run_at)) NOT VALID;

-- Least privilege: the audit trail is append-only for the runtime role. The runtime
-- inserts task_events rows and never changes one; only the pruner removes them, with the old finished
-- tasks they belong to. That deletion moves into this function, which runs with its owner's rights
-- (SECURITY DEFINER), so scripts/create-roles.sql grants the runtime role SELECT and INSERT on
-- task_events and EXECUTE on this function: a compromised node can add events, not rewrite or erase them.
--
-- pgdispatch_prune_finished: deletes up to p_batch tasks that finished (succeeded, failed, cancelled)
-- more than p_retention ago, with their events; returns how many tasks. Quarantined rows are kept
-- until an operator acts. TaskStore.pruneFinished (the Pruner) calls it.
CREATE OR REPLACE FUNCTION pgdispatch_prune_finished(p_retention interval, p_batch integer)
RETURNS integer
-- a SECURITY DEFINER function must not resolve names through the caller's search_path: the
-- afterMigrate callback pins it to the schema the migrations ran in, like every pgdispatch_* function
LANGUAGE plpgsql SECURITY DEFINER
AS $$
DECLARE
    n integer;
BEGIN
    IF p_retention IS NULL OR p_retention < interval '0' THEN
        RAISE EXCEPTION 'pgdispatch_prune_finished: p_retention=% must be a non-negative interval', p_retention;
    END IF;
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'pgdispatch_prune_finished: p_batch=% must be >= 1', p_batch;
    END IF;
    WITH old AS (
        SELECT id FROM tasks
         WHERE status IN ('succeeded', 'failed', 'cancelled')
           AND finished_at < now() - p_retention
         ORDER BY finished_at
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED
    ), gone AS (
        DELETE FROM tasks t USING old o WHERE t.id = o.id RETURNING t.id
    ), events AS (
        DELETE FROM task_events e USING gone g WHERE e.task_id = g.id
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION pgdispatch_prune_finished(interval, integer) FROM PUBLIC;

-- V12: compensated tasks (V10_5: a failed task whose compensation step succeeded) are finished like
-- succeeded, failed and cancelled ones, so retention deletes them too: before, the pruner's function
-- and its index knew only those three, and compensated rows (with their events) were kept forever.
-- Quarantined rows are still kept until an operator acts.
--
-- Outside a transaction (see the .conf file): the index is rebuilt CONCURRENTLY, without blocking writers.
-- Re-runnable: every step checks what is already there.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_finished_v12_idx
    ON tasks (finished_at) WHERE status IN ('succeeded', 'failed', 'cancelled', 'compensated');
DROP INDEX CONCURRENTLY IF EXISTS tasks_finished_idx;
ALTER INDEX IF EXISTS tasks_finished_v12_idx RENAME TO tasks_finished_idx;

-- pgdispatch_prune_finished: deletes up to p_batch tasks that finished (succeeded, failed, cancelled,
-- compensated) more than p_retention ago, with their events; returns how many tasks. Otherwise as V9
-- (SECURITY DEFINER, search_path pinned by afterMigrate.sql, EXECUTE granted to the runtime role there).
CREATE OR REPLACE FUNCTION pgdispatch_prune_finished(p_retention interval, p_batch integer)
RETURNS integer
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
         WHERE status IN ('succeeded', 'failed', 'cancelled', 'compensated')
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

-- V6: the emergency cleanup function ops can run from psql without the service, and the wake-up
-- notification sent when due tasks are inserted (by pgdispatch or by any producer's plain INSERT).

-- pgdispatch_reap_stale: requeue RUNNING rows whose lease expired more than p_grace ago (rows from
-- before the lease columns existed: whose last heartbeat, else updated_at, is that old), while
-- requeue_count < p_max_requeue; beyond the budget the row is quarantined with the reason.
-- Works in batches of p_batch rows. p_dry_run => only reports, changes nothing.
--   SELECT * FROM pgdispatch_reap_stale(interval '15 minutes', 3, 200, true);   -- what would happen
--   SELECT * FROM pgdispatch_reap_stale(interval '15 minutes', 3, 200, false);  -- do it
CREATE OR REPLACE FUNCTION pgdispatch_reap_stale(
    p_grace       interval DEFAULT interval '15 minutes',
    p_max_requeue integer  DEFAULT 3,
    p_batch       integer  DEFAULT 200,
    p_dry_run     boolean  DEFAULT true)
RETURNS TABLE (task_id bigint, previous_owner text, action text, reason text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF p_grace IS NULL OR p_grace < interval '0' THEN
        RAISE EXCEPTION 'pgdispatch_reap_stale: p_grace=% must be a non-negative interval', p_grace;
    END IF;
    IF p_max_requeue IS NULL OR p_max_requeue < 0 THEN
        RAISE EXCEPTION 'pgdispatch_reap_stale: p_max_requeue=% must be >= 0', p_max_requeue;
    END IF;
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'pgdispatch_reap_stale: p_batch=% must be >= 1', p_batch;
    END IF;

    IF p_dry_run THEN
        RETURN QUERY
        SELECT t.id, t.owner_id,
               CASE WHEN t.requeue_count < p_max_requeue THEN 'requeue' ELSE 'quarantine' END,
               CASE WHEN t.lease_expires_at IS NOT NULL THEN 'lease expired at ' || t.lease_expires_at
                    ELSE 'no lease; last activity at ' || coalesce(t.last_heartbeat_at, t.updated_at) END
          FROM tasks t
         WHERE t.status = 'running'
           AND coalesce(t.lease_expires_at, t.last_heartbeat_at, t.updated_at) < now() - p_grace
         ORDER BY t.id;
        RETURN;
    END IF;

    LOOP
        RETURN QUERY
        WITH stale AS (
            SELECT t.id, t.owner_id AS prev_owner, t.lease_token AS prev_token,
                   t.requeue_count < p_max_requeue AS requeue,
                   CASE WHEN t.lease_expires_at IS NOT NULL THEN 'lease expired at ' || t.lease_expires_at
                        ELSE 'no lease; last activity at ' || coalesce(t.last_heartbeat_at, t.updated_at) END AS why
              FROM tasks t
             WHERE t.status = 'running'
               AND coalesce(t.lease_expires_at, t.last_heartbeat_at, t.updated_at) < now() - p_grace
             ORDER BY t.id
             LIMIT p_batch
               FOR UPDATE SKIP LOCKED
        ), moved AS (
            UPDATE tasks t
               SET status           = CASE WHEN s.requeue THEN 'pending' ELSE 'quarantined' END,
                   requeue_count    = t.requeue_count + CASE WHEN s.requeue THEN 1 ELSE 0 END,
                   owner_id         = CASE WHEN s.requeue THEN NULL ELSE t.owner_id END,
                   lease_expires_at = NULL,
                   run_at           = CASE WHEN s.requeue THEN now() ELSE t.run_at END,
                   finished_at      = CASE WHEN s.requeue THEN NULL ELSE now() END,
                   last_error       = CASE WHEN s.requeue THEN t.last_error
                                           ELSE 'quarantined: requeue budget ' || p_max_requeue || ' exhausted; ' || s.why END,
                   updated_at       = now()
              FROM stale s
             WHERE t.id = s.id
            RETURNING t.id, s.prev_owner, s.prev_token, s.requeue, s.why
        ), ev AS (
            INSERT INTO task_events (task_id, event, owner_id, lease_token, detail)
            SELECT m.id, CASE WHEN m.requeue THEN 'requeued' ELSE 'quarantined' END, m.prev_owner, m.prev_token,
                   jsonb_build_object('reason', m.why, 'by', 'pgdispatch_reap_stale')
              FROM moved m
        )
        SELECT m.id, m.prev_owner, CASE WHEN m.requeue THEN 'requeue' ELSE 'quarantine' END, m.why FROM moved m;

        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n < p_batch;
    END LOOP;
END;
$$;

-- Wake-ups: one notification per statement and queue that inserts due tasks, on one fixed channel
-- with the queue name as payload. The channel name is a constant, so no queue name is ever
-- interpolated into a LISTEN/NOTIFY identifier. PostgreSQL folds identical notifications of one
-- transaction into one, so a bulk insert costs a single notification per queue.
CREATE OR REPLACE FUNCTION pgdispatch_notify_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgdispatch_wakeup', q.queue)
       FROM (SELECT DISTINCT n.queue FROM inserted n WHERE n.status = 'pending' AND n.run_at <= now()) q;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_notify_inserted
    AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION pgdispatch_notify_inserted();

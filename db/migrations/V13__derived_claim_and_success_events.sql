-- V13: the audit trail without event rows on the happy path (issue 17).
--
-- A task claimed once that succeeds carries its whole story on its own row: owner, lease token,
-- attempt, started_at and finished_at. Until V12 every such task also wrote two task_events rows
-- ('claimed' and 'succeeded', three index entries each), 7 - 12 us of server CPU per task
-- (docs/PERFORMANCE.md). From V13:
--
-- * The stored rows live in task_event_log (the V5 table, renamed). Every transition other than a plain
--   claim and its success writes its row there as before, in the statement that makes the transition.
-- * A plain claim (not a take-over, a reclaim, a compensation step or a quarantine by the claim) writes
--   no row: it reserves the next event id (nextval of the log's own identity sequence, in the claim
--   statement, under the row lock) in tasks.claim_event_id. A success under the presented lease writes
--   none either: it reserves one in tasks.done_event_id. The ids are taken where the rows were inserted
--   before, from the same sequence, so a task's events still sort by id in the order of its transitions.
-- * The view task_events (the contract's old name: every ops query, alert, CLI output and the chaos
--   checker read it unchanged) shows the stored rows and, for each reserved id, the row the transition
--   would have written, built from the task row: 'claimed' (owner, token, started_at, {"attempt": n})
--   and 'succeeded' (owner, token, finished_at). Same names, ids, owners, tokens, times and details.
-- * A derived row is true only while the task row still says it. The BEFORE UPDATE trigger
--   tasks_trail (last in name order, after V10_5's compensation trigger has set the status) writes the
--   derived rows into the log, with their reserved ids and the OLD values, in the same statement that
--   changes what they are built from (status out of running/succeeded, owner, token, attempts,
--   started_at, finished_at), and clears the reservation. Its WHEN clause is evaluated in C: the claim
--   and the success of the happy path never call it. So whatever changes the row later (a failure, the
--   reaper, a take-over, an operator, plain SQL) the history it replaces is in the log first.
-- * Invariant (checked below): a reserved claim id only on a running or succeeded task, a reserved
--   success id only on a succeeded one. Retention deletes a task and its events together, as before.
--
-- A node of an earlier version still writes INSERT INTO task_events during a rolling upgrade: the view's
-- INSTEAD OF trigger appends those rows to the log (they carry no reservation, so nothing is shown twice).

ALTER TABLE task_events RENAME TO task_event_log;
ALTER INDEX task_events_pkey RENAME TO task_event_log_pkey;
ALTER INDEX task_events_task_idx RENAME TO task_event_log_task_idx;
ALTER INDEX task_events_at_idx RENAME TO task_event_log_at_idx;
ALTER TABLE task_event_log RENAME CONSTRAINT task_events_event_check TO task_event_log_event_check;
ALTER SEQUENCE task_events_id_seq RENAME TO task_event_log_id_seq;

ALTER TABLE tasks
    ADD COLUMN claim_event_id bigint,
    ADD COLUMN done_event_id  bigint;
-- NOT VALID: both columns are new and NULL on every row, so there is nothing to validate (and no scan
-- of a large table under its lock); every write from here on is checked.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_claim_event_id_check CHECK (claim_event_id IS NULL OR status IN ('running', 'succeeded')) NOT VALID,
    ADD CONSTRAINT tasks_done_event_id_check CHECK (done_event_id IS NULL OR status = 'succeeded') NOT VALID;

CREATE VIEW task_events AS
    SELECT e.id, e.task_id, e.event, e.owner_id, e.lease_token, e.at, e.detail
      FROM task_event_log e
    UNION ALL
    SELECT t.claim_event_id, t.id, 'claimed', t.owner_id, t.lease_token, t.started_at,
           jsonb_build_object('attempt', t.attempts)
      FROM tasks t
     WHERE t.claim_event_id IS NOT NULL
    UNION ALL
    SELECT t.done_event_id, t.id, 'succeeded', t.owner_id, t.lease_token, t.finished_at, NULL::jsonb
      FROM tasks t
     WHERE t.done_event_id IS NOT NULL;
ALTER VIEW task_events ALTER COLUMN at SET DEFAULT now();

COMMENT ON VIEW task_events IS
    'The audit trail of every task transition: task_event_log''s rows and the claimed/succeeded rows of plain claims and their successes, built from the task row (V13)';
COMMENT ON COLUMN tasks.claim_event_id IS
    'task_events id of this attempt''s claimed event while it is shown from this row (V13); NULL once written to task_event_log';
COMMENT ON COLUMN tasks.done_event_id IS
    'task_events id of this task''s succeeded event while it is shown from this row (V13); NULL once written to task_event_log';

-- The derived rows of OLD go to the log before the row stops saying them.
CREATE OR REPLACE FUNCTION pgdispatch_trail() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.claim_event_id IS NOT NULL THEN
        INSERT INTO task_event_log (id, task_id, event, owner_id, lease_token, at, detail) OVERRIDING SYSTEM VALUE
        VALUES (OLD.claim_event_id, OLD.id, 'claimed', OLD.owner_id, OLD.lease_token, OLD.started_at,
                jsonb_build_object('attempt', OLD.attempts));
        IF NEW.claim_event_id IS NOT DISTINCT FROM OLD.claim_event_id THEN
            NEW.claim_event_id := NULL;
        END IF;
    END IF;
    IF OLD.done_event_id IS NOT NULL THEN
        INSERT INTO task_event_log (id, task_id, event, owner_id, lease_token, at) OVERRIDING SYSTEM VALUE
        VALUES (OLD.done_event_id, OLD.id, 'succeeded', OLD.owner_id, OLD.lease_token, OLD.finished_at);
        IF NEW.done_event_id IS NOT DISTINCT FROM OLD.done_event_id THEN
            NEW.done_event_id := NULL;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_trail
    BEFORE UPDATE ON tasks
    FOR EACH ROW
    WHEN ((OLD.claim_event_id IS NOT NULL
           AND (NEW.status NOT IN ('running', 'succeeded')
                OR NEW.claim_event_id IS DISTINCT FROM OLD.claim_event_id
                OR NEW.owner_id IS DISTINCT FROM OLD.owner_id
                OR NEW.lease_token IS DISTINCT FROM OLD.lease_token
                OR NEW.attempts IS DISTINCT FROM OLD.attempts
                OR NEW.started_at IS DISTINCT FROM OLD.started_at))
       OR (OLD.done_event_id IS NOT NULL
           AND (NEW.status <> 'succeeded'
                OR NEW.done_event_id IS DISTINCT FROM OLD.done_event_id
                OR NEW.owner_id IS DISTINCT FROM OLD.owner_id
                OR NEW.lease_token IS DISTINCT FROM OLD.lease_token
                OR NEW.finished_at IS DISTINCT FROM OLD.finished_at)))
    EXECUTE FUNCTION pgdispatch_trail();

-- Writes through the old name (a node of an earlier version, a script): appended to the log.
CREATE OR REPLACE FUNCTION pgdispatch_task_events_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_event_log (task_id, event, owner_id, lease_token, at, detail)
    VALUES (NEW.task_id, NEW.event, NEW.owner_id, NEW.lease_token, coalesce(NEW.at, now()), NEW.detail)
    RETURNING id, at INTO NEW.id, NEW.at;
    RETURN NEW;
END;
$$;

CREATE TRIGGER task_events_insert
    INSTEAD OF INSERT ON task_events
    FOR EACH ROW EXECUTE FUNCTION pgdispatch_task_events_insert();

-- The functions that wrote or deleted task_events rows, as in V6, V12 and V12_2 but on the log (a view
-- takes no DELETE, and an insert through its trigger costs a function call per row).
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
        DELETE FROM task_event_log e USING gone g WHERE e.task_id = g.id
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END
$$;

-- pgdispatch_reap_stale (V6), the dependency triggers' functions (V12_2): unchanged but for the log.
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
            INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
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

CREATE OR REPLACE FUNCTION pgdispatch_dependencies_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'waiting' THEN
        INSERT INTO task_dependencies (depends_on, task_id)
        SELECT t.id, NEW.id FROM tasks t
         WHERE t.id = ANY (NEW.depends_on)
           AND t.status NOT IN ('succeeded', 'failed', 'cancelled', 'quarantined', 'compensated');
    ELSIF NEW.status = 'cancelled' THEN
        INSERT INTO task_event_log (task_id, event, detail)
        SELECT NEW.id, 'cancelled', jsonb_build_object('reason', NEW.last_error, 'by', 'dependency',
               'dependency', t.id, 'dependency_status', t.status)
          FROM tasks t
         WHERE t.id = ANY (NEW.depends_on) AND t.status IN ('failed', 'cancelled', 'quarantined', 'compensated')
         ORDER BY t.id LIMIT 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION pgdispatch_release_dependents() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_failed boolean := NEW.status <> 'succeeded';
    v_queues text[];
BEGIN
    -- waits for inserts of dependents still open (their edges become visible to the next statement)
    PERFORM pgdispatch_dependency_lock(NEW.id, true);
    WITH ended AS (
        DELETE FROM task_dependencies d WHERE d.depends_on = NEW.id RETURNING d.task_id
    ), moved AS (
        UPDATE tasks t
           SET status            = CASE WHEN v_failed AND t.on_dependency_failure = 'cancel' THEN 'cancelled'
                                        WHEN t.dependencies_left <= 1 THEN 'pending'
                                        ELSE 'waiting' END,
               dependencies_left = greatest(t.dependencies_left - 1, 0),
               finished_at       = CASE WHEN v_failed AND t.on_dependency_failure = 'cancel' THEN now() ELSE t.finished_at END,
               last_error        = CASE WHEN v_failed AND t.on_dependency_failure = 'cancel'
                                        THEN format('dependency %s ended %s', NEW.id, NEW.status) ELSE t.last_error END,
               updated_at        = now()
          FROM ended e
         WHERE t.id = e.task_id AND t.status = 'waiting'
        RETURNING t.id, t.status, t.queue, t.run_at, t.last_error
    ), ev AS (
        INSERT INTO task_event_log (task_id, event, detail)
        SELECT m.id, CASE WHEN m.status = 'cancelled' THEN 'cancelled' ELSE 'dependencies_resolved' END,
               jsonb_build_object('by', 'dependency', 'dependency', NEW.id, 'dependency_status', NEW.status)
               || CASE WHEN m.status = 'cancelled' THEN jsonb_build_object('reason', m.last_error) ELSE '{}'::jsonb END
          FROM moved m
         WHERE m.status <> 'waiting'
    )
    SELECT array_agg(DISTINCT m.queue) FILTER (WHERE m.status = 'pending' AND m.run_at <= now())
      INTO v_queues FROM moved m;
    -- the wake-up of V6 (same channel, payload the queue name): a released task is claimed at once
    PERFORM pg_notify('pgdispatch_wakeup', q) FROM unnest(v_queues) AS q;
    RETURN NULL;
END;
$$;

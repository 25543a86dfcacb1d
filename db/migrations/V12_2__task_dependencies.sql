-- V12_2: task dependencies (issue 15). A task may be enqueued to run after other tasks (depends_on):
-- it is 'waiting' until all of them have succeeded, then 'pending'; when one of them ends otherwise
-- (failed, cancelled, quarantined, compensated) the waiting task is cancelled with the reason, or, when
-- it chose on_dependency_failure = 'run', counts that dependency as done and runs anyway.
--
-- * Cycles are impossible by construction: a task depends only on rows that exist when it is inserted
--   (checked under a lock by the insert trigger below) and depends_on never changes afterwards, so
--   every dependency points to an earlier insert.
-- * The wait costs no polling: 'waiting' rows are not in tasks_claim_idx (status = 'pending'), and the
--   release is done by the database, in the transaction that ends the dependency (an AFTER UPDATE OF
--   status trigger whose WHEN reads only the updated row: tasks without dependents pay one boolean).
-- * Every transition writes its task_events row in the same transaction: 'dependencies_resolved'
--   (waiting -> pending) or 'cancelled' (detail.by = 'dependency'), and a released task wakes the nodes
--   on V6's channel, as an insert does.
-- Columns with constant defaults: catalog-only changes, no rewrite. None is indexed: renewals stay HOT.
ALTER TABLE tasks
    -- the tasks this one waits for, as inserted (sorted, without duplicates by the insert trigger); never updated
    ADD COLUMN depends_on            bigint[],
    -- 'cancel': a dependency that ends other than succeeded cancels this task; 'run': it runs anyway
    ADD COLUMN on_dependency_failure text    NOT NULL DEFAULT 'cancel',
    -- dependencies not ended yet (maintained by the triggers; 0 once released)
    ADD COLUMN dependencies_left     integer NOT NULL DEFAULT 0,
    -- some task depends on this one: only then does its end look for dependents (the trigger's WHEN)
    ADD COLUMN has_dependents        boolean NOT NULL DEFAULT false;

ALTER TABLE tasks
    DROP CONSTRAINT tasks_status_check,
    ADD CONSTRAINT tasks_status_check CHECK (status IN (
        'waiting', 'pending', 'running', 'succeeded', 'failed', 'cancelled', 'quarantined',
        'compensating', 'compensated')) NOT VALID,
    ADD CONSTRAINT tasks_depends_on_check CHECK (
        depends_on IS NULL
        OR (cardinality(depends_on) BETWEEN 1 AND 1000 AND array_position(depends_on, NULL) IS NULL)) NOT VALID,
    ADD CONSTRAINT tasks_on_dependency_failure_check CHECK (on_dependency_failure IN ('cancel', 'run')) NOT VALID,
    -- a waiting row always has something to wait for: no task can be left waiting for nothing
    ADD CONSTRAINT tasks_waiting_check CHECK (
        status <> 'waiting' OR (depends_on IS NOT NULL AND dependencies_left > 0)) NOT VALID;

-- The dependencies not ended yet, one row per (dependency, dependent). A row is deleted when its
-- dependency ends, in the same statement that counts it on the dependent: a dependency that ends,
-- is retried by an operator and ends again counts once. No foreign keys (as task_events): retention
-- deletes tasks, and the check would cost every transition a look-up.
CREATE TABLE task_dependencies (
    depends_on bigint NOT NULL,
    task_id    bigint NOT NULL,
    PRIMARY KEY (depends_on, task_id)
);

ALTER TABLE task_events
    DROP CONSTRAINT task_events_event_check,
    ADD CONSTRAINT task_events_event_check CHECK (event IN (
        'claimed', 'succeeded', 'retry_scheduled', 'failed', 'requeued',
        'quarantined', 'lease_lost', 'completion_refused', 'recovered_on_startup',
        'released', 'cancelled', 'retried_by_operator',
        'stuck', 'lease_extended', 'extension_refused',
        'compensation_started', 'compensated', 'compensation_failed',
        'dependencies_resolved')) NOT VALID;

-- Insert of a task with depends_on (TaskClient, pgdispatch_enqueue, a plain INSERT alike): the rules,
-- each error naming its rule, then the status the task starts in.
-- The race between this insert and the end of a dependency is settled by a transaction-scoped advisory
-- lock per dependency (class 'pgdp', pgdispatch_dependency_lock): shared here, in id order, until the
-- inserting transaction ends; exclusive in the release trigger before it reads the edges. So either
-- the end waits for the insert's commit and then finds its edge, or the insert waits for the end's
-- commit and then sees the status it left. No row lock on the dependency is held for that: a claim
-- (FOR UPDATE SKIP LOCKED) would skip it meanwhile.
-- The first dependent of a task sets its has_dependents, an update that holds the dependency's row
-- lock until the inserting transaction ends (a claim skips the row meanwhile, its completion waits):
-- keep such transactions short. A pending dependency whose flag is set is announced on V6's channel,
-- delivered at that commit, so a claim that skipped it does not wait for the next poll.
CREATE OR REPLACE FUNCTION pgdispatch_dependency_lock(p_task_id bigint, p_exclusive boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- two-int advisory keys (a key space apart from the reaper's bigint key); ids 2^31 apart share a
    -- key, which only makes one wait for the other
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(x'70676470'::int, (p_task_id & 2147483647)::int);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(x'70676470'::int, (p_task_id & 2147483647)::int);
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION pgdispatch_dependencies_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_deps    bigint[];
    v_missing bigint;
    v_open    integer;
    v_failed  bigint;
    v_queues  text[];
BEGIN
    IF cardinality(NEW.depends_on) = 0 OR array_position(NEW.depends_on, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'depends_on % must list 1 to 1000 task ids, none null (rule tasks_depends_on_check)', NEW.depends_on
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tasks_depends_on_check';
    END IF;
    IF NEW.status NOT IN ('pending', 'waiting') THEN
        RAISE EXCEPTION 'a task with depends_on is inserted pending (status %); the database makes it waiting', quote_literal(NEW.status)
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tasks_waiting_check';
    END IF;
    SELECT array_agg(DISTINCT d ORDER BY d) INTO v_deps FROM unnest(NEW.depends_on) AS d;
    IF NEW.id = ANY (v_deps) THEN
        RAISE EXCEPTION 'task % cannot depend on itself (rule: a task depends only on tasks that exist before it)', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tasks_depends_on_check';
    END IF;
    -- has_dependents first (only where not set yet, rows locked in id order), announcing the pending ones
    WITH flagged AS (
        UPDATE tasks t SET has_dependents = true
          FROM (SELECT s.id FROM tasks s WHERE s.id = ANY (v_deps) AND NOT s.has_dependents
                 ORDER BY s.id FOR NO KEY UPDATE) l
         WHERE t.id = l.id
        RETURNING t.queue, t.status
    )
    SELECT array_agg(DISTINCT f.queue) FILTER (WHERE f.status = 'pending') INTO v_queues FROM flagged f;
    PERFORM pg_notify('pgdispatch_wakeup', q) FROM unnest(v_queues) AS q;
    -- then the shared lock of every dependency, in id order; the statements below see what committed before
    PERFORM pgdispatch_dependency_lock(d, false) FROM unnest(v_deps) AS d ORDER BY d;
    -- REPEATABLE READ and SERIALIZABLE keep the transaction's first snapshot: a dependency that ended
    -- since would look open and its edge never be found. Locking the rows makes such a producer fail
    -- with a serialization error (retry) instead; READ COMMITTED needs no row lock.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM 1 FROM tasks t WHERE t.id = ANY (v_deps) ORDER BY t.id FOR KEY SHARE;
    END IF;
    SELECT min(d) INTO v_missing FROM unnest(v_deps) AS d WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = d);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'depends_on: task % does not exist (rule: a task depends only on tasks that exist before it)', v_missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'tasks_depends_on_exist',
                  DETAIL = format('missing_task_id=%s', v_missing);
    END IF;
    SELECT count(*) FILTER (WHERE t.status NOT IN ('succeeded', 'failed', 'cancelled', 'quarantined', 'compensated')),
           min(t.id) FILTER (WHERE t.status IN ('failed', 'cancelled', 'quarantined', 'compensated'))
      INTO v_open, v_failed
      FROM tasks t WHERE t.id = ANY (v_deps);
    NEW.depends_on := v_deps;
    IF v_failed IS NOT NULL AND NEW.on_dependency_failure = 'cancel' THEN
        NEW.status := 'cancelled';
        NEW.finished_at := now();
        NEW.dependencies_left := v_open;
        NEW.last_error := format('dependency %s ended %s', v_failed, (SELECT t.status FROM tasks t WHERE t.id = v_failed));
    ELSIF v_open > 0 THEN
        NEW.status := 'waiting';
        NEW.dependencies_left := v_open;
    ELSE
        NEW.status := 'pending';
        NEW.dependencies_left := 0;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_dependencies_before_insert
    BEFORE INSERT ON tasks
    FOR EACH ROW WHEN (NEW.depends_on IS NOT NULL)
    EXECUTE FUNCTION pgdispatch_dependencies_before_insert();

-- After the row is in (an INSERT ... ON CONFLICT DO NOTHING that skipped it runs nothing here): the
-- edges of a waiting task, or the event of a task cancelled at insert because a dependency had
-- already ended otherwise than succeeded.
CREATE OR REPLACE FUNCTION pgdispatch_dependencies_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'waiting' THEN
        INSERT INTO task_dependencies (depends_on, task_id)
        SELECT t.id, NEW.id FROM tasks t
         WHERE t.id = ANY (NEW.depends_on)
           AND t.status NOT IN ('succeeded', 'failed', 'cancelled', 'quarantined', 'compensated');
    ELSIF NEW.status = 'cancelled' THEN
        INSERT INTO task_events (task_id, event, detail)
        SELECT NEW.id, 'cancelled', jsonb_build_object('reason', NEW.last_error, 'by', 'dependency',
               'dependency', t.id, 'dependency_status', t.status)
          FROM tasks t
         WHERE t.id = ANY (NEW.depends_on) AND t.status IN ('failed', 'cancelled', 'quarantined', 'compensated')
         ORDER BY t.id LIMIT 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_dependencies_after_insert
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.depends_on IS NOT NULL)
    EXECUTE FUNCTION pgdispatch_dependencies_after_insert();

-- depends_on and on_dependency_failure are immutable: what a task waits for is decided at its insert
-- (this is what keeps cycles impossible).
CREATE OR REPLACE FUNCTION pgdispatch_dependencies_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'task %: depends_on and on_dependency_failure cannot change after the insert (rule: dependencies are immutable)', OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'tasks_depends_on_check';
END;
$$;

CREATE TRIGGER tasks_dependencies_immutable
    BEFORE UPDATE OF depends_on, on_dependency_failure ON tasks
    FOR EACH ROW
    WHEN (OLD.depends_on IS DISTINCT FROM NEW.depends_on OR OLD.on_dependency_failure IS DISTINCT FROM NEW.on_dependency_failure)
    EXECUTE FUNCTION pgdispatch_dependencies_immutable();

-- A dependency ended (whatever statement ended it: a node's completion, the reaper, an operator, plain
-- SQL): its edges are deleted and counted on their waiting dependents, in one statement with the events.
--   succeeded, or the dependent runs anyway: dependencies_left - 1; at 0 the task is pending
--     ('dependencies_resolved', naming the dependency that ended last) and the nodes are woken;
--   otherwise: the dependent is cancelled, last_error 'dependency N ended <status>' ('cancelled',
--     detail.by = 'dependency'); its own dependents follow through this same trigger.
-- Two dependencies of one task ending at once in two transactions: the second UPDATE of the dependent
-- waits for the first's commit and then counts from the row the first wrote (READ COMMITTED re-reads
-- a row it waited for; REPEATABLE READ and SERIALIZABLE fail with a serialization error, to be retried).
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
        INSERT INTO task_events (task_id, event, detail)
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

CREATE TRIGGER tasks_release_dependents
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW
    WHEN (NEW.has_dependents AND OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('succeeded', 'failed', 'cancelled', 'quarantined', 'compensated'))
    EXECUTE FUNCTION pgdispatch_release_dependents();

-- pgdispatch_enqueue (V10_1) with the dependencies: the same idempotent insert, two more parameters
-- (defaults: none, 'cancel'). Dropped and created again: a new parameter cannot be added in place, and
-- an overload would make a call with the seven old arguments ambiguous.
DROP FUNCTION pgdispatch_enqueue(text, jsonb, text, integer, timestamptz, integer, text);
CREATE FUNCTION pgdispatch_enqueue(
    p_kind                  text,
    p_payload               jsonb       DEFAULT '{}',
    p_queue                 text        DEFAULT 'default',
    p_priority              integer     DEFAULT 0,
    p_run_at                timestamptz DEFAULT NULL,
    p_max_attempts          integer     DEFAULT 5,
    p_idempotency_key       text        DEFAULT NULL,
    p_depends_on            bigint[]    DEFAULT NULL,
    p_on_dependency_failure text        DEFAULT 'cancel')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id  bigint;
    v_old record;
    v_diff text[];
BEGIN
    -- a few rounds: the conflicting row may be deleted (pruned) between our INSERT and our SELECT
    FOR round IN 1..3 LOOP
        INSERT INTO tasks (queue, kind, payload, priority, max_attempts, idempotency_key, run_at, depends_on,
                           on_dependency_failure)
        VALUES (p_queue, p_kind, p_payload, p_priority, p_max_attempts, p_idempotency_key, coalesce(p_run_at, now()),
                p_depends_on, p_on_dependency_failure)
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
        -- a new snapshot (READ COMMITTED, next statement): sees the row a concurrent producer just committed
        SELECT t.id, t.kind, t.queue, t.payload INTO v_old FROM tasks t WHERE t.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            v_diff := array_remove(ARRAY[
                CASE WHEN v_old.kind IS DISTINCT FROM p_kind THEN format('kind %L (not %L)', v_old.kind, p_kind) END,
                CASE WHEN v_old.queue IS DISTINCT FROM p_queue THEN format('queue %L (not %L)', v_old.queue, p_queue) END,
                CASE WHEN v_old.payload IS DISTINCT FROM p_payload THEN 'a different payload' END], NULL);
            IF cardinality(v_diff) = 0 THEN
                RETURN v_old.id;
            END IF;
            RAISE EXCEPTION 'idempotency_key % is already used by task % with %', quote_literal(p_idempotency_key),
                    v_old.id, array_to_string(v_diff, ', ')
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'tasks_idempotency_key_idx',
                      DETAIL = format('existing_task_id=%s', v_old.id),
                      HINT = 'send the same kind, queue and payload to get the existing task back, or use another key for another task';
        END IF;
    END LOOP;
    RAISE EXCEPTION 'idempotency_key % conflicted with a task that was deleted each time it was read; try again',
            quote_literal(p_idempotency_key) USING ERRCODE = 'serialization_failure';
END;
$$;

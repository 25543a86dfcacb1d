-- V13_7: the cancellation of dependents (V12_2, V13) without recursion.
--
-- Until V13_7 the trigger of a task that ended cancelled its waiting dependents, whose own status
-- change fired the same trigger, one nesting level per link: a chain of ~700 dependents made the
-- statement ending its first task fail with 'stack depth limit exceeded' (SQLSTATE 54001) every time,
-- so that outcome could never be written (a node's failure, the reaper's quarantine, an operator's
-- cancel) and the node or reaper writing it kept failing on a user's data.
--
-- From V13_7 the invocation for the task that ended does the whole cascade, at a nesting depth that
-- does not depend on the chain:
-- * It finds every task its end cancels (its waiting dependents that do not run anyway, theirs,
--   transitively: one WITH RECURSIVE over task_dependencies), locks their rows (FOR NO KEY UPDATE, in
--   id order), and reads again until the set it read was read with every member locked (a fixpoint,
--   usually the second read).
-- * One statement then deletes the edges of the ended task and of every member, cancels the members
--   and counts the edges on the other waiting dependents, with the events, as before. The triggers
--   of the tasks it cancels find no edge left and return.
-- * The race with an insert of a dependent (V12_2: per-dependency advisory lock, shared by the insert,
--   exclusive by the end) is kept for a dependency that was not waiting. A waiting task is ended only
--   by a statement that holds its row lock (a cascade's member, an operator's cancel), so the insert
--   now also share-locks the rows of its waiting dependencies (FOR SHARE; a waiting row is never
--   claimed) and that end takes no advisory lock: the insert either committed before the read that
--   finds its edge, or waits for the end's commit and then sees the task cancelled. A cascade thus
--   takes no lock table entry per task: with one advisory lock per member, a chain of ~20,000 (more
--   than max_locks_per_transaction x max_connections holds) failed with 'out of shared memory'.
-- Results as before: a cancelled task's last_error and event name the dependency it was reached
-- through (of several ended at once, the lowest id, as the insert trigger and a cancel through two
-- dependencies ended by one statement), dependencies_left is counted down by one as before; a task
-- that runs anyway counts every edge that ended, becomes pending at 0 ('dependencies_resolved',
-- naming the highest id among them) and its queue is woken.
CREATE OR REPLACE FUNCTION pgdispatch_release_dependents() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_failed  boolean  := NEW.status <> 'succeeded';
    v_ended   bigint[] := ARRAY[NEW.id];  -- the task that ended, then the tasks its end cancels
    v_locked  bigint[] := '{}';
    v_reached bigint[];
    v_new     bigint[];
    v_ids     bigint[];  -- the dependents whose edges ended
    v_edges   jsonb;     -- per dependent (id as key): n, first, last
    v_queues  text[];
BEGIN
    -- waits for inserts of dependents still open (their edges become visible to the next statement). A
    -- task that was waiting needs no advisory lock: the row lock this statement holds orders such inserts
    -- (they share-lock a waiting dependency's row), so a cascade takes no lock table entry per task
    IF OLD.status <> 'waiting' THEN
        PERFORM pgdispatch_dependency_lock(NEW.id, true);
    END IF;
    -- no edge left: no dependent open, or a task cancelled by the cascade of another (which took its edges)
    PERFORM 1 FROM task_dependencies d WHERE d.depends_on = NEW.id LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_failed THEN
        LOOP
            -- a new snapshot each round: sees every edge committed before the locks taken so far
            WITH RECURSIVE cancels(id) AS (
                SELECT d.task_id
                  FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
                 WHERE d.depends_on = NEW.id AND t.status = 'waiting' AND t.on_dependency_failure = 'cancel'
                UNION
                -- OFFSET 0 keeps it a look-up by index per task found: flattened, the planner may hash the
                -- whole edge table once per level when it has no statistics yet (O(levels x edges))
                SELECT x.id
                  FROM cancels c
                  CROSS JOIN LATERAL (
                      SELECT t.id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
                       WHERE d.depends_on = c.id AND t.status = 'waiting' AND t.on_dependency_failure = 'cancel'
                      OFFSET 0) x
            )
            SELECT coalesce(array_agg(c.id), '{}') INTO v_reached FROM cancels c;
            v_new := ARRAY(SELECT unnest(v_reached) EXCEPT SELECT unnest(v_locked) ORDER BY 1);
            EXIT WHEN cardinality(v_new) = 0;
            -- their row locks, in id order (an insert of a dependent of one waits for this commit, or this for its)
            PERFORM 1 FROM tasks t WHERE t.id = ANY (v_new) ORDER BY t.id FOR NO KEY UPDATE;
            v_locked := v_locked || v_new;
        END LOOP;
        v_ended := v_ended || v_reached;
    END IF;
    -- the edges that ended, per dependent: how many, the lowest (a cancel's reason), the highest (a
    -- release's). A map rather than a join: without statistics yet (a new or truncated table) the planner
    -- may rescan the join's inner side once per row of the UPDATE below (O(n^2) on a long chain).
    WITH ended AS (
        DELETE FROM task_dependencies d WHERE d.depends_on = ANY (v_ended) RETURNING d.depends_on, d.task_id
    ), counted AS (
        SELECT e.task_id, count(*)::integer AS n, min(e.depends_on) AS first_dep, max(e.depends_on) AS last_dep
          FROM ended e GROUP BY e.task_id
    )
    SELECT array_agg(c.task_id), jsonb_object_agg(c.task_id, jsonb_build_object('n', c.n, 'first', c.first_dep, 'last', c.last_dep))
      INTO v_ids, v_edges FROM counted c;
    WITH moved AS (
        UPDATE tasks t
           SET status            = CASE WHEN v_failed AND t.on_dependency_failure = 'cancel' THEN 'cancelled'
                                        WHEN t.dependencies_left <= (v_edges -> t.id::text ->> 'n')::integer THEN 'pending'
                                        ELSE 'waiting' END,
               dependencies_left = greatest(t.dependencies_left
                                            - CASE WHEN v_failed AND t.on_dependency_failure = 'cancel' THEN 1
                                                   ELSE (v_edges -> t.id::text ->> 'n')::integer END, 0),
               finished_at       = CASE WHEN v_failed AND t.on_dependency_failure = 'cancel' THEN now() ELSE t.finished_at END,
               last_error        = CASE WHEN v_failed AND t.on_dependency_failure = 'cancel'
                                        THEN format('dependency %s ended %s', v_edges -> t.id::text ->> 'first',
                                                    CASE WHEN (v_edges -> t.id::text ->> 'first')::bigint = NEW.id
                                                         THEN NEW.status ELSE 'cancelled' END)
                                        ELSE t.last_error END,
               updated_at        = now()
         WHERE t.id = ANY (v_ids) AND t.status = 'waiting'
        RETURNING t.id, t.status, t.queue, t.run_at, t.last_error,
                  (v_edges -> t.id::text ->> CASE WHEN t.status = 'cancelled' THEN 'first' ELSE 'last' END)::bigint AS dep
    ), ev AS (
        INSERT INTO task_event_log (task_id, event, detail)
        SELECT m.id, CASE WHEN m.status = 'cancelled' THEN 'cancelled' ELSE 'dependencies_resolved' END,
               jsonb_build_object('by', 'dependency', 'dependency', m.dep,
                                  'dependency_status', CASE WHEN m.dep = NEW.id THEN NEW.status ELSE 'cancelled' END)
               || CASE WHEN m.status = 'cancelled' THEN jsonb_build_object('reason', m.last_error) ELSE '{}'::jsonb END
          FROM moved m
         WHERE m.status <> 'waiting'
         ORDER BY m.id
    )
    SELECT array_agg(DISTINCT m.queue) FILTER (WHERE m.status = 'pending' AND m.run_at <= now())
      INTO v_queues FROM moved m;
    -- the wake-up of V6 (same channel, payload the queue name): a released task is claimed at once
    PERFORM pg_notify('pgdispatch_wakeup', q) FROM unnest(v_queues) AS q;
    RETURN NULL;
END;
$$;

-- The insert of a dependent (V12_2), one statement more: the share lock of its waiting dependencies.
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
    -- V13_7: a waiting dependency is ended only by a statement that holds its row lock (a cascade, an
    -- operator), which takes no advisory lock for it: a share lock on its row orders this insert with
    -- that end instead (a waiting row is never claimed, so no claim skips it meanwhile)
    PERFORM 1 FROM tasks t WHERE t.id = ANY (v_deps) AND t.status = 'waiting' ORDER BY t.id FOR SHARE;
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

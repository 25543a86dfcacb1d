-- V10_1: pgdispatch_enqueue, the idempotent insert of the SQL contract (docs/SQL_CONTRACT.md), also
-- used by TaskClient for tasks with an idempotency key (issue 14). The same key with the same kind,
-- queue and payload returns the existing task's id; with a different one it is refused with
-- SQLSTATE 23505 (unique_violation), naming the existing task in the message and, for programs, in
-- DETAIL as existing_task_id=N. A plain INSERT ... ON CONFLICT DO NOTHING cannot tell the two apart.
CREATE OR REPLACE FUNCTION pgdispatch_enqueue(
    p_kind            text,
    p_payload         jsonb       DEFAULT '{}',
    p_queue           text        DEFAULT 'default',
    p_priority        integer     DEFAULT 0,
    p_run_at          timestamptz DEFAULT NULL,
    p_max_attempts    integer     DEFAULT 5,
    p_idempotency_key text        DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id  bigint;
    v_old record;
    v_diff text[];
BEGIN
    -- a few rounds: the conflicting row may be deleted (pruned) between our INSERT and our SELECT
    FOR round IN 1..3 LOOP
        INSERT INTO tasks (queue, kind, payload, priority, max_attempts, idempotency_key, run_at)
        VALUES (p_queue, p_kind, p_payload, p_priority, p_max_attempts, p_idempotency_key, coalesce(p_run_at, now()))
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

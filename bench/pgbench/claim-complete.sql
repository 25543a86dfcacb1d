-- One cycle of the runtime's hot path: claim :limit due noop tasks as pgbench-<client id>, then complete them.
-- The two statements are TaskStore's CLAIM and COMPLETE (src/main/java/pgdispatch/store/TaskStore.java),
-- copied with the node's arrays inlined (one queue, one kind), :take_over false (as in all but one claim
-- per poll interval) and the claimed ids carried by \gset.
-- Run by scripts/pgbench-bound with -M prepared (server-side prepared statements, as pgJDBC after five
-- executions) and plan_cache_mode=force_custom_plan (as the pool sets it).
WITH lease AS (
    SELECT * FROM unnest('{noop}'::text[], '{600000}'::bigint[]) AS l(kind, lease_ms)
), limits AS (
    SELECT l.scope, l.name, false AS locked, 0 AS room FROM concurrency_limits l
     WHERE (l.scope = 'kind' AND l.name = ANY('{noop}'::text[]))
        OR (l.scope = 'queue' AND l.name = ANY('{default}'::text[]))
), expired AS (
    SELECT t.id, t.priority, t.run_at, t.kind, t.queue, t.owner_id AS prev_owner,CASE WHEN t.attempts >= 2147483646
          THEN 'attempts=' || t.attempts || ' leaves no room for another attempt (V8: below 2147483647)'
     WHEN t.lease_token >= 9223372036854775806
          THEN 'lease_token=' || t.lease_token || ' leaves no room for another lease (V8: below 9223372036854775807)'
     WHEN t.requeue_count >= 2147483647
          THEN 'requeue_count=' || t.requeue_count || ' is out of range (V8: below 2147483647)'
     WHEN pg_column_size(t.payload) > 1048576
          THEN 'payload of ' || pg_column_size(t.payload) || ' bytes stored exceeds TASK_MAX_PAYLOAD_BYTES=' || 1048576
END AS poison
      FROM tasks t
     WHERE false AND t.status = 'running' AND t.lease_expires_at < now()
       -- never this node's own row: it holds the task and its renewer renews it (after an outage,
       -- before anything else); an orphan of its own is reclaimed or left to the reapers (issue 11 item 5)
       AND t.owner_id IS DISTINCT FROM ('pgbench-' || :client_id)
       AND t.requeue_count < 3
       AND t.queue = ANY('{default}'::text[]) AND t.kind = ANY('{noop}'::text[])
       AND (NOT t.compensating OR t.kind = ANY('{}'::text[]))
       -- a paused queue's expired leases wait for the reaper (back to pending) and the resume
       AND NOT EXISTS (SELECT 1 FROM dispatcher_queues p WHERE p.queue = t.queue AND p.paused)
       AND NOT EXISTS (SELECT 1 FROM limits l WHERE NOT l.locked AND ((l.scope = 'kind' AND l.name = t.kind)
                                                                   OR (l.scope = 'queue' AND l.name = t.queue)))
     ORDER BY t.priority, t.run_at, t.id
     LIMIT :limit
       FOR UPDATE OF t SKIP LOCKED
), due AS (
    SELECT d.id, d.priority, d.run_at, d.kind, d.queue, NULL::text AS prev_owner, d.poison
      -- paused queues (dispatcher_queues) are read here, in the claim itself: a pause holds
      -- from every node's next claim on
      FROM (SELECT u.name FROM unnest('{default}'::text[]) AS u(name)
             WHERE NOT EXISTS (SELECT 1 FROM dispatcher_queues p WHERE p.queue = u.name AND p.paused)) AS q
     CROSS JOIN LATERAL (
        SELECT t.id, t.priority, t.run_at, t.kind, t.queue,CASE WHEN t.attempts >= 2147483646
          THEN 'attempts=' || t.attempts || ' leaves no room for another attempt (V8: below 2147483647)'
     WHEN t.lease_token >= 9223372036854775806
          THEN 'lease_token=' || t.lease_token || ' leaves no room for another lease (V8: below 9223372036854775807)'
     WHEN t.requeue_count >= 2147483647
          THEN 'requeue_count=' || t.requeue_count || ' is out of range (V8: below 2147483647)'
     WHEN pg_column_size(t.payload) > 1048576
          THEN 'payload of ' || pg_column_size(t.payload) || ' bytes stored exceeds TASK_MAX_PAYLOAD_BYTES=' || 1048576
END AS poison
          FROM tasks t
         WHERE t.status = 'pending' AND t.queue = q.name AND t.run_at <= now()
           -- a legacy run_at of '-infinity' (before V9's NOT VALID check) would fail that check
           -- on this UPDATE and take the batch down: left pending, shown to operators
           AND t.run_at > '-infinity'
           AND t.kind = ANY('{noop}'::text[])
           -- legacy rows from before V3's NOT VALID checks would fail them on this UPDATE and
           -- take the whole batch down with them: leave them pending, visible to operators.
           -- NOT IN, not = 'object': the planner guesses 0.5% for equality on an expression,
           -- which made a batch look like the whole backlog and chose Seq Scan + Sort
           -- (ClaimPlanTest); this form is guessed at ~97% (payload is NOT NULL)
           AND jsonb_typeof(t.payload) NOT IN ('array', 'string', 'number', 'boolean', 'null')
           AND t.priority BETWEEN -1000 AND 1000
           AND t.max_attempts BETWEEN 1 AND 1000 AND t.attempts >= 0 AND t.requeue_count >= 0
         ORDER BY t.priority, t.run_at, t.id
         LIMIT :limit
           FOR UPDATE OF t SKIP LOCKED) d
), compensate AS (
    -- compensation steps waiting (V10_5), for kinds whose handler here declares compensate(); those
    -- of a paused queue wait like its pending tasks, and a kind left out of the claimed kinds (by a
    -- full limit) is not read: it would take a place in `picked` and then find no lease (issue 15)
    SELECT t.id, t.priority, t.run_at, t.kind, t.queue, NULL::text AS prev_owner,CASE WHEN t.attempts >= 2147483646
          THEN 'attempts=' || t.attempts || ' leaves no room for another attempt (V8: below 2147483647)'
     WHEN t.lease_token >= 9223372036854775806
          THEN 'lease_token=' || t.lease_token || ' leaves no room for another lease (V8: below 9223372036854775807)'
     WHEN t.requeue_count >= 2147483647
          THEN 'requeue_count=' || t.requeue_count || ' is out of range (V8: below 2147483647)'
     WHEN pg_column_size(t.payload) > 1048576
          THEN 'payload of ' || pg_column_size(t.payload) || ' bytes stored exceeds TASK_MAX_PAYLOAD_BYTES=' || 1048576
END AS poison
      FROM tasks t
     WHERE t.status = 'compensating' AND t.queue = ANY('{default}'::text[]) AND t.run_at <= now()
       AND t.kind = ANY('{}'::text[]) AND t.kind = ANY('{noop}'::text[])
       AND NOT EXISTS (SELECT 1 FROM dispatcher_queues p WHERE p.queue = t.queue AND p.paused)
     ORDER BY t.priority, t.run_at, t.id
     LIMIT :limit
       FOR UPDATE OF t SKIP LOCKED
), picked AS (
    SELECT c.id, c.prev_owner, c.poison
      FROM (SELECT * FROM expired UNION ALL SELECT * FROM due UNION ALL SELECT * FROM compensate) c
     WHERE NOT EXISTS (SELECT 1 FROM limits l WHERE (l.scope = 'kind' AND l.name = c.kind)
                                                 OR (l.scope = 'queue' AND l.name = c.queue))
     ORDER BY c.priority, c.run_at, c.id
     LIMIT :limit
), claimed AS (
    UPDATE tasks t
       SET status            = CASE WHEN p.poison IS NULL THEN 'running' ELSE 'quarantined' END,
           owner_id          = ('pgbench-' || :client_id),
           lease_token       = CASE WHEN p.poison IS NULL THEN t.lease_token + 1
                                      ELSE least(t.lease_token, 9223372036854775806) END,
           lease_expires_at  = CASE WHEN p.poison IS NULL THEN now() + l.lease_ms * interval '1 millisecond' END,
           last_heartbeat_at = now(),  -- the attempt's progress clock starts at its claim
           progress_count    = 0,
           progress_interval_ms = NULL,
           renew_count       = 0,
           extension_count   = 0,
           quiet_until       = NULL,
           attempts          = CASE WHEN p.poison IS NULL THEN t.attempts + 1 ELSE least(t.attempts, 2147483646) END,
           requeue_count     = CASE WHEN p.poison IS NOT NULL THEN least(t.requeue_count, 2147483646)
                                    WHEN p.prev_owner IS NULL THEN t.requeue_count ELSE t.requeue_count + 1 END,
           started_at        = now(),
           finished_at       = CASE WHEN p.poison IS NULL THEN NULL ELSE now() END,
           last_error        = CASE WHEN p.poison IS NULL THEN t.last_error ELSE 'quarantined: ' || p.poison END,
           compensable       = t.kind = ANY('{}'::text[]),
           -- a plain claim writes no event: it reserves the id of its 'claimed' row, which the
           -- task_events view shows from this row until V13's trigger writes it to the log
           claim_event_id    = CASE WHEN p.poison IS NULL AND p.prev_owner IS NULL AND NOT t.compensating
                                    THEN nextval('task_event_log_id_seq') END,
           updated_at        = now()
      FROM picked p, lease l
     WHERE t.id = p.id AND l.kind = t.kind
    RETURNING t.id, t.queue, t.kind,
              -- at most one character past the bound reaches the node's heap (see POISON)
              CASE WHEN p.poison IS NULL THEN left(t.payload::text, 1048576 + 1) END AS payload,
              t.attempts, t.max_attempts, t.lease_token, t.progress::text AS progress, t.requeue_count,
              l.lease_ms, p.prev_owner, p.poison, t.compensating, t.claim_event_id
), ev AS (
    -- the other claims (a take-over, a compensation step, a quarantine) write their row
    INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
    SELECT c.id, CASE WHEN c.poison IS NOT NULL THEN 'quarantined'
                      WHEN c.compensating THEN 'compensation_started' ELSE 'claimed' END, ('pgbench-' || :client_id), c.lease_token,
           CASE WHEN c.poison IS NOT NULL THEN jsonb_build_object('reason', c.poison, 'by', 'claim')
                WHEN c.prev_owner IS NULL THEN jsonb_build_object('attempt', c.attempts)
                ELSE jsonb_build_object('attempt', c.attempts, 'took_over_from', c.prev_owner,
                                        'reason', 'lease expired', 'requeue_count', c.requeue_count) END
      FROM claimed c
     WHERE c.claim_event_id IS NULL
)
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(lease_token), '{}') AS tokens FROM claimed \gset

WITH done AS (
    SELECT * FROM unnest((:ids)::bigint[], (:tokens)::bigint[], array_fill(NULL::text, ARRAY[cardinality((:ids)::bigint[])])) AS d(id, token, result)
), upd AS (
    UPDATE tasks t
       SET status = 'succeeded', result = d.result::jsonb, finished_at = now(), updated_at = now(),
           lease_expires_at = NULL,
           -- a success under the lease it presents writes no event: it reserves the id of its
           -- 'succeeded' row, shown from this row by the task_events view (V13)
           done_event_id = CASE WHEN t.compensating OR t.lease_token <> d.token THEN NULL
                                ELSE nextval('task_event_log_id_seq') END
      FROM done d
     WHERE t.id = d.id AND t.lease_token = d.token AND t.owner_id = ('pgbench-' || :client_id) AND t.status = 'running'
    -- the token the node presented, not the row's (the fence makes them equal): an audit of the
    -- events must see what was asked, or a write the fence should have refused but did not
    -- would look like one it accepted (so such a write is stored, never derived from the row);
    -- a compensation step's success is 'compensated' (V10_5's trigger), stored too
    RETURNING t.id, d.token AS lease_token, t.status, t.done_event_id
), ev AS (
    INSERT INTO task_event_log (task_id, event, owner_id, lease_token)
    SELECT u.id, u.status, ('pgbench-' || :client_id), u.lease_token FROM upd u WHERE u.done_event_id IS NULL
), missed AS (
    -- outcomes the update did not take (normally none), with the row as it is; only these are
    -- looked up again, by primary key: a join of every outcome with the finished rows would
    -- scan them all on the statistics of a fresh backlog. By (id, token): a batch may hold two
    -- outcomes of one task under different tokens (this node took over its own expired lease);
    -- the stale one is missed and refused even though the task id was written
    SELECT d.id, d.token, t.status, t.owner_id, t.lease_token
      FROM done d LEFT JOIN tasks t ON t.id = d.id
     WHERE (d.id, d.token) NOT IN (SELECT id, lease_token FROM upd)
), refused AS (
    INSERT INTO task_event_log (task_id, event, owner_id, lease_token, detail)
    SELECT m.id, 'completion_refused', ('pgbench-' || :client_id), m.token,
           jsonb_build_object('outcome', 'succeeded', 'status', m.status,
                              'current_owner', m.owner_id, 'current_token', m.lease_token)
      FROM missed m
     WHERE (m.status IN ('succeeded', 'compensated') AND m.owner_id = ('pgbench-' || :client_id) AND m.lease_token = m.token) IS NOT TRUE
)
-- the missed ones already succeeded under this lease: a retry of a write whose commit we did
-- not hear about (the connection broke): it is ours
SELECT id, lease_token AS token, status FROM upd
UNION ALL
SELECT id, token, status FROM missed WHERE status IN ('succeeded', 'compensated') AND owner_id = ('pgbench-' || :client_id) AND lease_token = token;

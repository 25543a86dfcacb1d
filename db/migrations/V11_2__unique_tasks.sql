-- V11_2: unique tasks. A producer may give a task a unique key, computed from the fields it chooses
-- (kind, queue, payload fields, a time bucket) by pgdispatch_unique_key(), and the statuses in which
-- the key is held (unique_states). Two tasks with the same key cannot both be in one of their key's
-- statuses: the partial unique index of V11_3 says so, for TaskClient and plain SQL alike.
ALTER TABLE tasks
    ADD COLUMN unique_key    text,
    ADD COLUMN unique_states text[];

-- The statuses a task moves between on its own (waiting → pending → running → pending on a retry or a
-- requeue) are always held: a key could otherwise be taken by a second task while the first is between
-- two attempts, and the first one's next transition would then violate the index. NOT VALID: no scan.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_unique_key_check CHECK (
        (unique_key IS NULL) = (unique_states IS NULL)
        AND (unique_key IS NULL
             OR (char_length(unique_key) BETWEEN 1 AND 300
                 AND unique_states @> ARRAY['waiting', 'pending', 'running']::text[]
                 AND unique_states <@ ARRAY['waiting', 'pending', 'running', 'succeeded', 'failed', 'cancelled',
                                            'quarantined']::text[]))) NOT VALID;

-- pgdispatch_unique_key: the key of a task from the fields that make it unique.
--   p_queue   NULL: the queue is not part of the key (one such task across all queues)
--   p_fields  NULL: the payload is not part of the key; ARRAY['*']: the whole payload; else those
--             top-level fields (a missing one counts as null)
--   p_period  NULL: no time bucket; else the key holds the start of the bucket of that length (from
--             2000-01-01 UTC) that p_at falls in: "at most one per hour" is p_period = '1 hour' with
--             'succeeded' among the unique states
-- jsonb's text form is canonical (keys sorted, whitespace normalised), so equal payload fields give
-- equal keys whatever their order or spacing in the producer's JSON. The kind stays readable in front.
CREATE OR REPLACE FUNCTION pgdispatch_unique_key(
    p_kind    text,
    p_queue   text,
    p_payload jsonb,
    p_fields  text[],
    p_period  interval,
    p_at      timestamptz DEFAULT now())
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT p_kind || ':' || encode(sha256(convert_to(concat_ws(E'\x1f',
               'kind=' || p_kind,
               'queue=' || p_queue,
               'payload=' || CASE WHEN p_fields IS NULL THEN NULL
                                  WHEN p_fields = ARRAY['*'] THEN p_payload::text
                                  ELSE (SELECT coalesce(jsonb_object_agg(f, p_payload -> f), '{}'::jsonb)::text
                                          FROM unnest(p_fields) AS f) END,
               'period=' || CASE WHEN p_period IS NULL THEN NULL
                                 ELSE to_char(date_bin(p_period, p_at, timestamptz '2000-01-01 00:00:00+00')
                                              AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END),
           'UTF8')), 'hex')
$$;

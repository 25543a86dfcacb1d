-- The lightest claim + complete cycle there is, for comparison with claim-complete.sql (docs/PERFORMANCE.md):
-- claim :limit pending rows with one UPDATE ... FOR UPDATE SKIP LOCKED, then mark them done; no lease
-- token, no owner fencing, no guards, no audit rows, a table with two indexes. Not a design to copy (a
-- crashed worker's rows stay 'running' forever); it shows what the extra work of pgdispatch costs.
-- Set-up (database pgbmin, 200,000 rows):
--   CREATE TABLE jobs (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', payload jsonb DEFAULT '{}',
--                      locked_by text, locked_at timestamptz, created_at timestamptz DEFAULT now()) WITH (fillfactor = 80);
--   CREATE INDEX ON jobs (id) WHERE status = 'pending';
--   INSERT INTO jobs (status) SELECT 'pending' FROM generate_series(1, 200000); VACUUM ANALYZE jobs;
-- Run: pgbench -n -M prepared -D limit=100 -c 1 -t 2000 -f bench/pgbench/minimal-cycle.sql pgbmin
WITH picked AS (
    SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
), c AS (
    UPDATE jobs j SET status = 'running', locked_by = 'w', locked_at = now() FROM picked p WHERE j.id = p.id RETURNING j.id
)
SELECT coalesce(array_agg(id), '{}') AS ids FROM c \gset
UPDATE jobs SET status = 'done', locked_by = NULL WHERE id = ANY((:ids)::bigint[]);

-- V4: indexes for the claim, the reaper and owner look-ups, built without blocking writers on a live
-- table (CONCURRENTLY, so this migration runs outside a transaction: see V4__task_indexes.sql.conf).
-- IF NOT EXISTS: a crash mid-migration can leave an index built without Flyway's history row.
-- No index contains a column that a renewal changes (lease_expires_at, last_heartbeat_at, progress,
-- updated_at), so renewals stay HOT updates.

-- claim: due pending rows of one queue in priority order (lower number first), then due time
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_claim_idx
    ON tasks (queue, priority, run_at, id) WHERE status = 'pending';

-- reaper, renewal and startup recovery: the running rows, by owner
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_running_owner_idx
    ON tasks (owner_id) WHERE status = 'running';

-- enqueue with an idempotency key returns the existing task
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tasks_idempotency_key_idx
    ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- retention: finished rows by age
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_finished_idx
    ON tasks (finished_at) WHERE status IN ('succeeded', 'failed', 'cancelled');

-- the legacy index covers every status and is updated by every claim; the claim index replaces it
DROP INDEX CONCURRENTLY IF EXISTS tasks_status_run_at_idx;

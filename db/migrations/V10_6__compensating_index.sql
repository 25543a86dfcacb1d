-- V10_6: the claim's look-up of due compensation steps (V10_5), built without blocking writers
-- (CONCURRENTLY: outside a transaction, see the .conf file). Small: only rows waiting to compensate.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_compensating_idx
    ON tasks (queue, priority, run_at, id) WHERE status = 'compensating';

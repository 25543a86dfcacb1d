-- V3: columns the runtime needs beyond the lease, and guards on what producers may insert.
ALTER TABLE tasks
    ADD COLUMN idempotency_key text,
    -- the last checkpoint a handler saved with TaskContext.heartbeat(progress, message); the next attempt sees it
    ADD COLUMN progress        jsonb;

-- NOT VALID: enforced for every new or updated row at once, without scanning (or rejecting) legacy rows.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_queue_name_check CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$') NOT VALID,
    ADD CONSTRAINT tasks_kind_name_check  CHECK (kind  ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$') NOT VALID,
    ADD CONSTRAINT tasks_payload_object_check CHECK (jsonb_typeof(payload) = 'object') NOT VALID,
    ADD CONSTRAINT tasks_priority_range_check CHECK (priority BETWEEN -1000 AND 1000) NOT VALID,
    ADD CONSTRAINT tasks_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 1000) NOT VALID,
    ADD CONSTRAINT tasks_counts_check CHECK (attempts >= 0 AND requeue_count >= 0) NOT VALID;

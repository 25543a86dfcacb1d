-- Issue 11: counters no claim can increment. A row inserted by plain SQL with attempts (or lease_token)
-- at its type's maximum made every claim of a node fail with "integer out of range", in all its queues.
-- New rows must leave room for the increments a claim makes; NOT VALID like V3's guards, since an
-- existing installation may hold such a row: the claim quarantines it (TaskStore's POISON) instead of
-- failing, so a legacy row is set aside with its reason and everything else flows.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_counter_headroom_check
        CHECK (attempts < 2147483647 AND requeue_count < 2147483647 AND lease_token < 9223372036854775807) NOT VALID;

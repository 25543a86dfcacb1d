-- V7: the same name rules as V3, in a form that costs a fraction as much per row.
-- PostgreSQL checks every CHECK constraint on every UPDATE, whatever the UPDATE changes, so the claim,
-- the completion and every renewal pay for them. V3 wrote the length limit as a bounded repetition
-- ({0,99}, {0,199}), which PostgreSQL's regex engine expands into a large automaton: the two checks took
-- about a quarter of the server CPU of a claim + complete cycle (docs/PERFORMANCE.md). Here the regex
-- only checks the characters and char_length the limit: the accepted set is unchanged (every allowed
-- character is one byte; `$` matches only at the end of the string).
-- One ALTER TABLE, so no moment without the guard; NOT VALID again, so no scan of legacy rows (only a
-- brief lock of the catalog entry, as in V3).
ALTER TABLE tasks
    DROP CONSTRAINT tasks_queue_name_check,
    ADD CONSTRAINT tasks_queue_name_check
        CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(queue) <= 100) NOT VALID,
    DROP CONSTRAINT tasks_kind_name_check,
    ADD CONSTRAINT tasks_kind_name_check
        CHECK (kind ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(kind) <= 200) NOT VALID;

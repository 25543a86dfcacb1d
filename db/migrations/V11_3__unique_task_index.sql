-- V11_3: the rule of V11_2, enforced: at most one task per unique key among the tasks whose status is
-- one of their unique_states. Built without blocking writers (CONCURRENTLY: see the .conf file); the
-- columns are new and empty, so the build cannot fail on existing rows. IF NOT EXISTS: a crash mid-way
-- can leave the index without Flyway's history row.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tasks_unique_key_idx
    ON tasks (unique_key) WHERE unique_key IS NOT NULL AND status = ANY(unique_states);

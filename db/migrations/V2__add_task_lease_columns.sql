-- V2: lease columns. Adding nullable columns and columns with constant defaults is a catalog-only
-- change since PostgreSQL 11: no table rewrite, the ACCESS EXCLUSIVE lock is held for milliseconds.
ALTER TABLE tasks
    ADD COLUMN owner_id          text,
    ADD COLUMN lease_expires_at  timestamptz,
    ADD COLUMN last_heartbeat_at timestamptz,
    -- fencing token: bumped by every claim; every write of a worker is conditional on (owner_id, lease_token)
    ADD COLUMN lease_token       bigint  NOT NULL DEFAULT 0,
    ADD COLUMN requeue_count     integer NOT NULL DEFAULT 0;

-- Lease renewal is the most frequent write. Leave room on each page so a renewal's new row version
-- fits beside the old one (a HOT update: no index entries written). Applies to pages written from now on.
ALTER TABLE tasks SET (fillfactor = 80);

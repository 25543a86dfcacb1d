-- V12_1: recurring tasks (schedules). A schedule enqueues one task per fire time: a cron expression or a
-- fixed interval, in a time zone. Every node runs a Scheduler (no leader): it advances next_fire_at with
-- a compare-and-set UPDATE (WHERE next_fire_at = the value it read) in the same transaction as the
-- task's insert and the schedule_fires row, so of any number of nodes exactly one enqueues a fire time;
-- schedule_fires_once_idx and the task's idempotency key ('schedule:<name>@<fire time, UTC>') refuse a
-- second task for a fire time even from a scheduler that skipped the compare-and-set.
CREATE TABLE schedules (
    -- the name rule of kinds (tasks_kind_name_check)
    name          text PRIMARY KEY
                  CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(name) <= 200),
    -- exactly one of the two: a cron expression of 5 fields (Unix) or 6 (seconds first), parsed by the
    -- Scheduler (cron-utils); or a fixed interval in whole seconds (1 s to 366 days)
    cron          text
                  CHECK (char_length(cron) <= 200
                         AND array_length(regexp_split_to_array(btrim(cron), '\s+'), 1) IN (5, 6)),
    every_s       integer CHECK (every_s BETWEEN 1 AND 31622400),
    -- an IANA zone name (Europe/Berlin, UTC); offsets such as 'UTC+5' are refused: PostgreSQL reads them
    -- as POSIX zones (west positive), Java as ISO offsets (east positive)
    time_zone     text        NOT NULL DEFAULT 'UTC'
                  CHECK (time_zone ~ '^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z0-9_+-]+)*$' AND char_length(time_zone) <= 100
                         AND timezone(time_zone, timestamptz '2000-01-01 00:00:00+00') IS NOT NULL),
    -- the task each fire enqueues: the rules of tasks' own columns (V3, V7)
    kind          text        NOT NULL
                  CHECK (kind ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(kind) <= 200),
    payload       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    queue         text        NOT NULL DEFAULT 'default'
                  CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(queue) <= 100),
    priority      integer     NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    max_attempts  integer     NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
    enabled       boolean     NOT NULL DEFAULT true,
    -- fire times found more than the Scheduler's late bound (60 s) in the past (an outage): 'skip' enqueues
    -- none of them; 'backfill' enqueues the latest backfill_max of them; both record the rest as skipped
    missed        text        NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'backfill')),
    backfill_max  integer     NOT NULL DEFAULT 0,
    -- the next fire time; NULL: the Scheduler sets it to the first fire time after now() (a new row, one
    -- whose timing changed, one re-enabled), so no past fire time is enqueued for it
    next_fire_at  timestamptz CHECK (isfinite(next_fire_at)),
    last_fired_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- who created or last changed it: 'code:<node id>', 'cli:<user>', an operator's name
    changed_by    text,
    CONSTRAINT schedules_cron_or_every_check CHECK ((cron IS NULL) <> (every_s IS NULL)),
    CONSTRAINT schedules_backfill_check
        CHECK ((missed = 'skip' AND backfill_max = 0) OR (missed = 'backfill' AND backfill_max BETWEEN 1 AND 1000))
);

-- The history of each schedule: every fire (its task), every run-now, and every decision to skip missed
-- fire times (one row per decision: the first and last skipped fire time and how many). Kept here rather
-- than in task_events: a skip has no task to hang an event on, and fire rows are what makes a fire time
-- unique (the index below). Rows older than TASK_RETENTION_S are deleted by the Scheduler.
CREATE TABLE schedule_fires (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule      text        NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
    -- fired, backfilled: the fire time; run_now: when it was asked; skipped: the first skipped fire time
    fire_at       timestamptz NOT NULL,
    -- fired: on time (within the late bound); backfilled: a missed fire time enqueued by the backfill
    -- policy; run_now: an operator's `schedules run-now`; skipped: missed fire times not enqueued
    action        text        NOT NULL CHECK (action IN ('fired', 'backfilled', 'run_now', 'skipped')),
    task_id       bigint,
    skipped_until timestamptz,
    skipped_count bigint,
    node_id       text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedule_fires_task_check CHECK ((action = 'skipped') = (task_id IS NULL)),
    CONSTRAINT schedule_fires_skip_check
        CHECK ((action = 'skipped') = (skipped_until IS NOT NULL AND skipped_count IS NOT NULL))
);
-- one task per (schedule, fire time), whoever enqueues it
CREATE UNIQUE INDEX schedule_fires_once_idx ON schedule_fires (schedule, fire_at) WHERE action IN ('fired', 'backfilled');
CREATE INDEX schedule_fires_recent_idx ON schedule_fires (schedule, recorded_at);

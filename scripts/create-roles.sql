-- scripts/create-roles.sql   — the two database roles of a pgdispatch installation, with least privilege.
--   pgdispatch_owner  migration role: owns the tables, sequences and functions that db/migrations create.
--                     Use it for `pgdispatch migrate` (scripts/migrate.sh, scripts/adopt-existing-db.sh).
--   pgdispatch_app    runtime role: `pgdispatch run` and the other commands. It reads and writes rows of
--                     tasks, dispatcher_nodes, dispatcher_queues, concurrency_limits, schedules and
--                     schedule_fires (every node's scheduler advances schedules, records fires and deletes
--                     history past retention), reads and appends to task_event_log (the audit trail's
--                     stored rows: no UPDATE or DELETE; old events go only through pgdispatch_prune_finished,
--                     which deletes them with their old finished tasks) and reads the task_events view (V13;
--                     INSERT through it too, for nodes of earlier versions), reads pgdispatch_schema_history (a node
--                     refuses to start on a schema version it does not know), and runs
--                     pgdispatch_reap_stale. It cannot create, alter or drop anything.
--
-- Run it as a superuser (or a role with CREATEROLE that may grant on the objects), connected to the
-- pgdispatch database, before the first `pgdispatch migrate`; run it again after each migrate:
--   psql -v ON_ERROR_STOP=1 -d pgdispatch -f scripts/create-roles.sql
--   psql -v ON_ERROR_STOP=1 -d pgdispatch -v owner_password="$OWNER_PW" -v app_password="$APP_PW" \
--        -f scripts/create-roles.sql
-- It is idempotent: roles that exist are kept, grants that exist are granted again (a no-op).
--
-- Passwords: only from the psql variables owner_password and app_password. When a variable is not
-- given, the role's password is left as it is; a newly created role then has none, and can log in
-- only where pg_hba.conf allows it without one (peer, cert). No password is stored in this file.
-- The statement that sets a password carries it in clear text and may land in the server log when
-- log_statement is 'ddl' or 'all': where that matters, set it interactively with psql's
-- `\password pgdispatch_app`, which sends only a hash.
--
-- Tables that later migrations create get the runtime grants automatically (ALTER DEFAULT PRIVILEGES
-- below), provided pgdispatch_owner creates them. The first migrate creates pgdispatch_schema_history
-- the same way, so it too starts with the runtime role's write grants: running this script after
-- that migrate takes them back (SELECT only).
-- The database itself must exist (pgdispatch_owner may not create databases): CREATE DATABASE first.
-- Not changed here, because they apply to every role of the database: PUBLIC's default CONNECT and
-- TEMPORARY on it. On a database that serves only pgdispatch, `REVOKE ALL ON DATABASE pgdispatch FROM
-- PUBLIC` leaves the two roles with only what this script grants.
-- The connection URLs then differ per role:
--   migrate:  DATABASE_URL=postgres://pgdispatch_owner:...@host:5432/pgdispatch scripts/pgdispatch migrate
--   run:      DATABASE_URL=postgres://pgdispatch_app:...@host:5432/pgdispatch   scripts/pgdispatch run

\set ON_ERROR_STOP on
BEGIN;

-- Roles. CREATE ROLE has no IF NOT EXISTS; the check on pg_roles makes a second run a no-op.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgdispatch_owner') THEN
        CREATE ROLE pgdispatch_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
        RAISE NOTICE 'create-roles: created role pgdispatch_owner';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgdispatch_app') THEN
        CREATE ROLE pgdispatch_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
        RAISE NOTICE 'create-roles: created role pgdispatch_app';
    END IF;
END
$$;

\if :{?owner_password}
ALTER ROLE pgdispatch_owner PASSWORD :'owner_password';
\endif
\if :{?app_password}
ALTER ROLE pgdispatch_app PASSWORD :'app_password';
\endif

-- The database (psql's DBNAME: the one this script is connected to).
GRANT CONNECT ON DATABASE :"DBNAME" TO pgdispatch_owner, pgdispatch_app;

-- The schema. Only the owner creates objects. PostgreSQL 15 no longer lets PUBLIC create in schema
-- public; on older servers this REVOKE is what stops pgdispatch_app (and every other role) from
-- creating tables there. On 15 and later it changes nothing.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO pgdispatch_owner;
GRANT USAGE ON SCHEMA public TO pgdispatch_app;

-- Objects that pgdispatch_owner creates from now on (the next migrations).
ALTER DEFAULT PRIVILEGES FOR ROLE pgdispatch_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pgdispatch_app;
ALTER DEFAULT PRIVILEGES FOR ROLE pgdispatch_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO pgdispatch_app;
ALTER DEFAULT PRIVILEGES FOR ROLE pgdispatch_owner IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO pgdispatch_app;

-- Objects that exist already (a database migrated before this script ran, or an adopted one).
-- Whatever role owns them, the runtime role gets exactly its grants on them; ownership is not changed
-- (see the warning below).
DO $$
DECLARE
    t   text;
    seq text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tasks', 'dispatcher_nodes', 'task_events', 'task_event_log', 'dispatcher_queues',
                             'concurrency_limits', 'schedules', 'schedule_fires', 'task_dependencies'] LOOP
        IF to_regclass('public.' || t) IS NULL THEN
            CONTINUE;  -- not migrated yet: the default privileges above will cover it
        END IF;
        IF t IN ('task_events', 'task_event_log') THEN
            -- append-only for the runtime: an earlier run of this script granted UPDATE and DELETE
            -- (task_events: the table until V13, a view since, whose default privileges grant them too)
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON TABLE public.%I FROM pgdispatch_app', t);
            EXECUTE format('GRANT SELECT, INSERT ON TABLE public.%I TO pgdispatch_app', t);
        ELSE
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.%I TO pgdispatch_app', t);
        END IF;
        -- identity columns' sequences (tasks.id, task_event_log.id: nextval reserves event ids, V13)
        FOR seq IN
            SELECT s.oid::regclass::text
              FROM pg_class s
              JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
             WHERE s.relkind = 'S' AND d.refobjid = ('public.' || t)::regclass
        LOOP
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO pgdispatch_app', seq);
        END LOOP;
    END LOOP;

    IF to_regclass('public.pgdispatch_schema_history') IS NOT NULL THEN
        -- read-only: the runtime checks the schema version; only migrations write the history
        REVOKE ALL ON TABLE public.pgdispatch_schema_history FROM pgdispatch_app;
        GRANT SELECT ON TABLE public.pgdispatch_schema_history TO pgdispatch_app;
    END IF;

    IF to_regprocedure('public.pgdispatch_prune_finished(interval, integer)') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION public.pgdispatch_prune_finished(interval, integer) TO pgdispatch_app;
    END IF;

    IF to_regprocedure('public.pgdispatch_reap_stale(interval, integer, integer, boolean)') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION public.pgdispatch_reap_stale(interval, integer, integer, boolean) TO pgdispatch_app;
    END IF;

    -- Migrations must run as the owner of what they alter. Objects created by another role (migrated
    -- as postgres, or a legacy tasks table) are reported, not taken over: the previous owner would
    -- lose its rights on them, which may break a legacy application still using the table.
    FOR t IN
        SELECT c.relname || ' (owner ' || pg_get_userbyid(c.relowner) || ')'
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace
           AND c.relname IN ('tasks', 'dispatcher_nodes', 'task_events', 'task_event_log', 'dispatcher_queues', 'concurrency_limits',
                            'schedules', 'schedule_fires', 'pgdispatch_schema_history')
           AND pg_get_userbyid(c.relowner) <> 'pgdispatch_owner'
    LOOP
        RAISE WARNING 'create-roles: table % is not owned by pgdispatch_owner; migrations run as pgdispatch_owner will fail on it. When nothing else depends on the current owner: ALTER TABLE ... OWNER TO pgdispatch_owner', t;
    END LOOP;
END
$$;

COMMIT;

-- What the runtime role may do now, for the operator to check.
SELECT c.relname AS object,
       CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END AS kind,
       pg_get_userbyid(c.relowner) AS owner,
       array_to_string(ARRAY(
           SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'USAGE']) p
            WHERE CASE WHEN c.relkind = 'S' THEN p IN ('SELECT', 'USAGE') AND has_sequence_privilege('pgdispatch_app', c.oid, p)
                       ELSE p <> 'USAGE' AND has_table_privilege('pgdispatch_app', c.oid, p) END), ',') AS pgdispatch_app_may
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S')
 ORDER BY c.relname;

-- Not a versioned migration: a Flyway callback that runs after every `migrate` (and changes nothing
-- when nothing needs it). It pins the search_path of every pgdispatch_* function to the schema the
-- migrations ran in (Flyway sets search_path to PGDISPATCH_SCHEMA while migrating), so
-- `SELECT * FROM myschema.pgdispatch_reap_stale(...)` reaches myschema.tasks whatever the caller's
-- search_path, and the trigger function runs the same under an application's connection. Functions
-- added by later migrations are pinned by the same callback: they need nothing of their own.
-- Except the SQL expression helpers (LANGUAGE sql, IMMUTABLE or STABLE: the stuck rule of V10): they
-- read no table, and the planner never inlines a SQL function that has a SET clause, which would turn
-- an expression evaluated per held lease of every renewal into a function call per row.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace = current_schema()::regnamespace
           AND p.proname LIKE 'pgdispatch\_%'
           AND p.prokind = 'f'
           AND NOT (p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql') AND p.provolatile IN ('i', 's'))
           AND p.proconfig IS DISTINCT FROM ARRAY['search_path=' || quote_ident(current_schema())]
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I', f, current_schema());
    END LOOP;
END
$$;

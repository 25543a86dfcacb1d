#!/usr/bin/env bash
# scripts/adopt-existing-db.sh [--dry-run]   — brings a database that already has the legacy `tasks`
# table (the shape of db/migrations/V1__tasks.sql) under pgdispatch's migrations, while it is in use.
# Runs `pgdispatch migrate --baseline-version 1`: Flyway records V1 as already applied (it never runs
# V1 against the existing table), then applies V2 and later, then `pgdispatch migrate info`.
#   --dry-run   runs `pgdispatch migrate --baseline-version 1 --dry-run`: reports, changes nothing.
# V2 and later are safe on a live table: V2/V3 add nullable or constant-default columns (catalog-only,
# no table rewrite) and CHECK constraints NOT VALID (no scan of existing rows); V4 builds indexes
# CONCURRENTLY (writers are not blocked); V5 adds new tables; V6 adds a function and a trigger; V7
# re-states two CHECK constraints (NOT VALID again). Each
# takes its table lock for milliseconds, but waits for long-running transactions on `tasks` first.
# Before running it, read docs/OPERATIONS.md "Adopt an existing database": legacy rows that break the
# new CHECK constraints must be fixed first, or every later UPDATE of them (a claim) fails.
# DATABASE_URL must use a role that owns the `tasks` table. The baseline applies only when the schema
# has no pgdispatch history yet; with one, this is a plain `pgdispatch migrate`. Without a `tasks` table
# of V1's shape it refuses and changes nothing.
# Exit codes: 0 done, 1 a step failed, 2 usage error.
set -euo pipefail
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
migrate_args=(--baseline-version 1)
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) migrate_args+=(--dry-run) ;;
    *) echo "adopt-existing-db.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
pgdispatch="$(dirname "$0")/pgdispatch"
"$pgdispatch" migrate "${migrate_args[@]}"
"$pgdispatch" migrate info

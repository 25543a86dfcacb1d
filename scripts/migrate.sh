#!/usr/bin/env bash
# scripts/migrate.sh [--dry-run]   — brings a new, empty database to the current schema.
# Runs `pgdispatch migrate` (db/migrations V1, V2, ... in order, each recorded in pgdispatch_schema_history),
# then `pgdispatch migrate info` to show every version and its state. The database is DATABASE_URL
# (default jdbc:postgresql://localhost:5432/pgdispatch?user=postgres); use the migration role's
# credentials (pgdispatch_owner, see scripts/create-roles.sql), not the runtime role's.
#   --dry-run   pass --dry-run to `pgdispatch migrate`: report what would be applied, change nothing
#               (also for a database that does not exist yet: `migrate info` is skipped, it needs one).
# A database that already has a `tasks` table from before pgdispatch: use scripts/adopt-existing-db.sh.
# Exit codes: 0 done, 1 a step failed, 2 usage error.
set -euo pipefail
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
migrate_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) migrate_args+=(--dry-run) ;;
    *) echo "migrate.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
pgdispatch="$(dirname "$0")/pgdispatch"
"$pgdispatch" migrate ${migrate_args[@]+"${migrate_args[@]}"}
# a dry run has listed what would be applied; info would fail on a database that does not exist yet,
# the very case a dry run before the first migrate is for (issue 11 item 10)
if [ ${#migrate_args[@]} -eq 0 ]; then
  "$pgdispatch" migrate info
fi

#!/usr/bin/env bash
# scripts/cleanup-stale-tasks.sh [--apply] [--stale-seconds S] [--max-requeue N] [--batch B] [--json]
# Emergency cleanup of tasks stuck RUNNING, for when the nodes' own reaper is not running or too slow.
# Without --apply it only reports (`pgdispatch reap --dry-run`): which task would be requeued, which
# quarantined, and why. With --apply it does it (`pgdispatch reap`): a stale RUNNING task goes back to
# pending while its requeue_count is below --max-requeue, else to quarantined; each move is recorded
# in task_events (requeued / quarantined). Stale: lease expired, no heartbeat for --stale-seconds, or
# owner node stopped or not seen for TASK_NODE_TIMEOUT_S.
#   --stale-seconds S   heartbeat age that makes a RUNNING task stale (TASK_STALE_S)
#   --max-requeue N     requeue budget per task (TASK_MAX_REQUEUE)
#   --batch B           rows per transaction (TASK_REAP_BATCH)
#   --json              machine-readable output
# Unset flags take the values of those variables (defaults 900, 3, 200). From psql alone, without the
# service (it only takes tasks whose lease expired more than the interval ago):
#   SELECT * FROM pgdispatch_reap_stale(interval '15 minutes', 3, 200, true);   -- true = dry run
# Exit codes: 0 done, 1 failure, 2 usage error.
set -euo pipefail
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
apply=false
reap_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --apply) apply=true ;;
    --json) reap_args+=(--json) ;;
    --stale-seconds|--max-requeue|--batch)
      if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#-}" != "$2" ]; then
        echo "cleanup-stale-tasks.sh: $1 needs a value" >&2; exit 2
      fi
      reap_args+=("$1" "$2"); shift ;;
    --stale-seconds=*|--max-requeue=*|--batch=*) reap_args+=("$1") ;;
    *) echo "cleanup-stale-tasks.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "$apply" = false ]; then
  reap_args=(--dry-run ${reap_args[@]+"${reap_args[@]}"})
  echo "cleanup-stale-tasks.sh: dry run, nothing is changed; add --apply to do it" >&2
fi
exec "$(dirname "$0")/pgdispatch" reap ${reap_args[@]+"${reap_args[@]}"}

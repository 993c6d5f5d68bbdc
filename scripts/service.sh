#!/usr/bin/env bash
# Stops and starts the shared services, for the fault suite (`shop-bench faults`):
#   scripts/service.sh postgres-stop | postgres-start | redis-stop | redis-start
#                      broker-stop | broker-kill | broker-start
# Starting is ensure_* from lib.sh: the same configuration and the same durable storage.
# broker-kill is SIGKILL: no clean shutdown, as a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# The broker stopped with signal $1 (TERM, or KILL as a crash), and gone, not just deaf: a new
# broker must not open the SQLite file while the old one holds it.
stop_broker() {
  [ -x "$TANSU" ] || die "the fault suite stops tansu; $TANSU is not installed"
  pkill "-$1" -f "$TANSU broker" || true
  wait_for "! pgrep -f '$TANSU broker'" 30 || die "the broker did not stop"
}

postgres_cluster() { pg_lsclusters -h | awk '$3 == 5432 {print $1" "$2; exit}'; }

case "${1:-}" in
  postgres-stop)
    # shellcheck disable=SC2046
    as_root pg_ctlcluster $(postgres_cluster) stop -m fast
    ;;
  postgres-start) ensure_postgres ;;
  redis-stop)
    redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
    wait_for "! redis-cli -h 127.0.0.1 -p 6379 ping" 20 || die "Redis did not stop"
    ;;
  redis-start) ensure_redis ;;
  broker-stop) stop_broker TERM ;;
  broker-kill) stop_broker KILL ;;
  broker-start) ensure_broker ;;
  *) die "usage: $0 postgres-stop|postgres-start|redis-stop|redis-start|broker-stop|broker-kill|broker-start" ;;
esac

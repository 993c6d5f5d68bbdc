#!/usr/bin/env bash
# Runs the curl examples of README.md (between the readme-examples markers) against a freshly
# started API and checkout worker with an empty database, Redis prefix, topics and consumer group
# of their own. Every request must succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

work=$(mktemp -d)
db="shop_readme_$$"
api_pid=
worker_pid=
cleanup() {
  [ -z "$api_pid" ] || kill "$api_pid" 2>/dev/null || true
  [ -z "$worker_pid" ] || kill "$worker_pid" 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

awk '/<!-- readme-examples:begin -->/ {on = 1; next} /<!-- readme-examples:end -->/ {on = 0} on' README.md |
  grep -v '^```' >"$work/examples.sh"
[ -s "$work/examples.sh" ] || die "README.md has no readme-examples block"

cargo build --locked --bin shop-api --bin checkout-worker
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
export DATABASE_URL="${DATABASE_URL%/*}/$db" REDIS_KEY_PREFIX="readme:$$:"
API_ADDR=127.0.0.1:0 ./target/debug/shop-api serve >"$work/api.log" 2>&1 &
api_pid=$!
INVENTORY_TOPIC="readme-$$.inventory" ORDER_EVENTS_TOPIC="readme-$$.order-events" CONSUMER_GROUP="readme-$$" \
  WORKER_METRICS_ADDR=127.0.0.1:0 ./target/debug/checkout-worker run >"$work/worker.log" 2>&1 &
worker_pid=$!
wait_for "grep -q 'shop API listening' '$work/api.log'" 30 || { cat "$work/api.log"; die "API did not start"; }
addr=$(sed -n 's/.*shop API listening address=\([0-9.:]*\).*/\1/p' "$work/api.log" | head -1)

# Every curl in the examples fails on an HTTP error and is counted.
cat >"$work/run.sh" <<PRELUDE
set -euo pipefail
curl() {
  echo "+ curl \$*" >&2
  command curl --fail-with-body -sS --max-time 60 "\$@" || { echo "FAILED: curl \$*" >&2; return 1; }
  echo >>"$work/count"
}
PRELUDE
cat "$work/examples.sh" >>"$work/run.sh"
touch "$work/count"
if API="http://$addr" bash "$work/run.sh" >"$work/out.log"; then
  echo "readme: $(wc -l <"$work/count") passed, 0 failed"
else
  cat "$work/out.log" "$work/worker.log"
  echo "readme: $(wc -l <"$work/count") passed, 1 failed"
  exit 1
fi

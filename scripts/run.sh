#!/usr/bin/env bash
# Starts the whole shop on this machine with the demo catalog, and serves until Ctrl-C.
# Installs and starts PostgreSQL and Redis first when they are missing. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

export API_ADDR=${API_ADDR:-127.0.0.1:8080}
api="http://$API_ADDR"
if curl -fsS "$api/readyz" >/dev/null 2>&1; then
  log "the shop is already running at $api"
  exit 0
fi

ensure_tools
ensure_postgres
ensure_redis

log "building the services (release)"
cargo build --release --locked --bins

./target/release/shop-api load-demo "${DEMO_PRODUCTS:-400}"

pids=()
stop() { [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM

./target/release/shop-api serve &
pids+=($!)
wait_for "curl -fsS $api/readyz" 30 || die "the API did not become ready"

cat <<BANNER

  The shop is running.
    API        $api            (try: curl $api/products?limit=3)
    health     $api/healthz    $api/readyz
    metrics    $api/metrics
    PostgreSQL $DATABASE_URL
    Redis      $REDIS_URL

  Ctrl-C stops the API (PostgreSQL and Redis keep running).

BANNER
wait -n "${pids[@]}"

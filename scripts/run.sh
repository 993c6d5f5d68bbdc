#!/usr/bin/env bash
# Starts the whole shop on this machine with the demo catalog, and serves until Ctrl-C.
# Installs and starts PostgreSQL, Redis, the Kafka-protocol broker and the development mail sink
# first when they are missing.
#   scripts/run.sh         one PostgreSQL, one Redis: the storefront on http://127.0.0.1:8080/
#   scripts/run.sh --ha    the same shop on the highly available stores of scripts/ha.sh
#                          (PostgreSQL under Patroni, Redis under Sentinel; needs root), on
#                          http://127.0.0.1:8090/, beside the other if it runs
# Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ha=
case "${1:-}" in
  "") ;;
  --ha) ha=1 ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
if [ -n "$ha" ]; then
  # Its own address, topics and consumer group, so that it can run beside the single-node shop
  # on the one broker.
  export API_ADDR=${API_ADDR:-127.0.0.1:8090} WORKER_METRICS_ADDR=${WORKER_METRICS_ADDR:-127.0.0.1:9111}
  export INVENTORY_TOPIC=shopha.inventory ORDER_EVENTS_TOPIC=shopha.order-events
  export DEAD_LETTER_TOPIC=shopha.dead-letters CONSUMER_GROUP=shopha-checkout-worker
fi
export API_ADDR=${API_ADDR:-127.0.0.1:8080}
api="http://$API_ADDR"
if curl -fsS "$api/readyz" >/dev/null 2>&1; then
  log "the shop is already running at $api"
  exit 0
fi

if [ -n "$ha" ]; then
  scripts/ha.sh up
  eval "$(scripts/ha.sh env)"
  ensure_tools
  ensure_broker
  ensure_mailsink
else
  ensure_services
fi

log "building the services (release)"
cargo build --release --locked --bin shop-api --bin checkout-worker

./target/release/shop-api load-demo "${DEMO_PRODUCTS:-400}"

# Each service runs under a supervisor loop that starts it again if it dies (as Kubernetes or
# compose would): the pipeline is built to survive a kill -9 at any point, and a worker can die
# of a librdkafka bug when the broker restarts (RELIABILITY.md, "Known issues").
# The loops go on while $run_dir/running exists.
run_dir=$(mktemp -d)
touch "$run_dir/running"
supervisors=()
supervise() {
  local name=$1 rc
  shift
  # Ctrl-C is for the main shell, which stops everything in order (stop below).
  trap '' INT
  while [ -e "$run_dir/running" ]; do
    # In a session of its own: a Ctrl-C in the terminal must not reach the service before the
    # loop knows it is stopping, or the loop would start it again.
    setsid "$@" &
    echo $! >"$run_dir/$name.pid"
    rc=0
    wait $! || rc=$?
    [ -e "$run_dir/running" ] || break
    log "$name exited (status $rc); starting it again"
    sleep 1
  done
}
# Whether any of the pids is a live process (a zombie waiting to be reaped is not).
alive() {
  local pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] && return 0
  done
  return 1
}
stop() {
  trap '' INT TERM # a second Ctrl-C must not cut the stop short
  rm -f "$run_dir/running"
  # Polled, not waited for: bash's `wait` inside a trap can block on every child, the broker and
  # the mail sink too when ensure_services started them from this shell. Asked again each round,
  # so a service a supervisor started just before it saw the stop is stopped too; whatever is
  # left after 10 s is killed (the pipeline is built to survive a kill -9).
  local pids deadline=$((SECONDS + 10))
  while :; do
    pids=$(cat "$run_dir"/*.pid 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    alive "${supervisors[@]}" $pids || break
    if [ "$SECONDS" -ge "$deadline" ]; then
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -rf "$run_dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The storefront links to the development mailbox, where sign-in codes and order mails land.
export DEV_MAILBOX_URL=${DEV_MAILBOX_URL:-http://$MAILSINK_HTTP/}
supervise api ./target/release/shop-api serve &
supervisors+=($!)
export WORKER_METRICS_ADDR=${WORKER_METRICS_ADDR:-127.0.0.1:9101}
supervise worker ./target/release/checkout-worker run &
supervisors+=($!)
wait_for "curl -fsS $api/readyz" 30 || die "the API did not become ready"
wait_for "curl -fsS http://$WORKER_METRICS_ADDR/healthz" 60 || die "the checkout worker did not start"

cat <<BANNER

  The shop is running.
    storefront $api/           (open it in a browser)
    mailbox    $DEV_MAILBOX_URL   (sign-in codes and order mails; or: python3 scripts/mailsink.py latest)
    API        $api            (try: curl $api/products?limit=3)
    API docs   $api/docs       (OpenAPI 3.1: $api/openapi.json)
    health     $api/healthz    $api/readyz
    metrics    $api/metrics (API)   http://$WORKER_METRICS_ADDR/metrics (checkout worker)
    PostgreSQL $DATABASE_URL
    Redis      $REDIS_URL
    Kafka      $KAFKA_BROKERS   (order events: ./target/release/checkout-worker tail-events)

  Ctrl-C stops the API and the worker (PostgreSQL, Redis, the broker and the mail sink keep running).

BANNER
[ -z "$ha" ] || { scripts/ha.sh status; echo "  (scripts/ha.sh down stops them)"; echo; }
wait "${supervisors[@]}"

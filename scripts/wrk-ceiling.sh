#!/usr/bin/env bash
# The most checkouts this machine can refuse a second, measured from outside with wrk (Debian's):
# a release API and worker of their own (their own database, Redis prefix and topics; the API's
# rate limits off as the benchmarks run it; the worker sends the registration's mail), one shopper whose cart holds a sold-out product, and wrk against GET /healthz,
# GET /cart and POST /orders/checkout (409 out_of_stock) in turn. Prints wrk's rate and latency
# and, for the checkouts, each process's CPU (top, 5 s in the middle of the run).
#   scripts/wrk-ceiling.sh                     # 10 s each, 128 connections
#   SECONDS_EACH=8 CONNECTIONS=256 scripts/wrk-ceiling.sh
#   API_BIN=/path/to/other/shop-api scripts/wrk-ceiling.sh   # another build, for a comparison
# BENCHMARKS.md ("The ceiling under the accept target") quotes it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_services
ensure_mailsink
command -v wrk >/dev/null || apt_install wrk
log "building the services (release)"
cargo build --release --locked --bin shop-api --bin checkout-worker
API_BIN=${API_BIN:-./target/release/shop-api}
seconds=${SECONDS_EACH:-10}
connections=${CONNECTIONS:-128}

name="shop_ceiling_$$"
work=$(mktemp -d)
pids=()
cleanup() {
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  redis_delete "$name:*"
  rm -rf "$work"
}
trap cleanup EXIT
psql "$DATABASE_URL" -qc "CREATE DATABASE $name"
db="${DATABASE_URL%/*}/$name"
DATABASE_URL=$db REDIS_KEY_PREFIX="$name:" API_ADDR=127.0.0.1:0 DEV_MAILBOX_URL="http://$MAILSINK_HTTP/" \
  RATE_LIMIT_PER_IP=0 RATE_LIMIT_PER_SESSION=0 MAX_CONNECTIONS_PER_IP=0 \
  "$API_BIN" serve >"$work/api.log" 2>&1 &
pids+=($!)
DATABASE_URL=$db REDIS_KEY_PREFIX="$name:" INVENTORY_TOPIC="$name.inventory" \
  ORDER_EVENTS_TOPIC="$name.order-events" DEAD_LETTER_TOPIC="$name.dead-letters" \
  CONSUMER_GROUP="$name" WORKER_METRICS_ADDR=127.0.0.1:0 \
  ./target/release/checkout-worker run >"$work/worker.log" 2>&1 &
pids+=($!)
wait_for "grep -q 'shop API listening' '$work/api.log'" 30 || { cat "$work/api.log"; die "API did not start"; }
API="http://$(sed -n 's/.*shop API listening address=\([0-9.:]*\).*/\1/p' "$work/api.log" | head -1)"

# One shopper with one unit of a product in the cart, then the product sold out (written
# straight to this system's own database).
token=$(register_shopper "ceiling$$@example.com" "+1415555$((1000 + $$ % 9000))")
auth="authorization: Bearer $token"
json='content-type: application/json'
product=$(curl -sf -X POST "$API/products" -H "$auth" -H "$json" \
  -d '{"name":"Ceiling","price_cents":100,"available_quantity":1,"category":"home"}' | jq -er .id)
curl -sf -X POST "$API/cart/add" -H "$auth" -H "$json" -d "{\"product_id\":$product,\"quantity\":1}" >/dev/null
psql "$db" -qc "UPDATE products SET available_quantity = 0 WHERE id = $product"
refused=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/orders/checkout" -H "$auth")
[ "$refused" = 409 ] || die "a checkout of the sold-out cart answered $refused, not 409"
echo 'wrk.method = "POST"' >"$work/post.lua"

# The CPU of each process, as % of one core, summed by command, over 5 s.
cpu_by_process() {
  top -b -n 2 -d 5 | awk '/^top/ { n++ } n == 2 && $1 ~ /^[0-9]+$/ { cpu[$12] += $9 }
    END { for (c in cpu) if (cpu[c] >= 1) printf "  %-12s %5.1f %%\n", c, cpu[c] }' | sort -k2 -nr
}

for what in healthz cart checkout; do
  case $what in
    healthz) args=("$API/healthz") ;;
    cart) args=(-H "$auth" "$API/cart") ;;
    checkout) args=(-H "$auth" -s "$work/post.lua" "$API/orders/checkout") ;;
  esac
  log "$what: wrk -t2 -c$connections -d${seconds}s"
  cpu_pid=
  if [ "$what" = checkout ]; then
    (sleep $((seconds / 2 - 2)); echo "CPU during the checkouts:"; cpu_by_process) >"$work/cpu" &
    cpu_pid=$!
  fi
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "${args[@]}" | grep -E 'Requests/sec|  50%|  99%|Non-2xx|Socket errors'
  if [ -n "$cpu_pid" ]; then
    wait "$cpu_pid"
    cat "$work/cpu"
  fi
done

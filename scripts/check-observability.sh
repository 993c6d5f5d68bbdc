#!/usr/bin/env bash
# Validates ops/prometheus and ops/grafana with real tools: promtool checks the scrape
# configuration and the alert rules and runs their unit tests; then a real Prometheus scrapes a
# freshly started API and checkout worker while a few checkouts go through, and every PromQL
# expression of the dashboard and of the rules is evaluated through its HTTP API. Each must
# parse and evaluate; each panel of the dashboard's "Checkout pipeline" row must return data.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_tools
command -v promtool >/dev/null || apt_install prometheus
RULES=ops/prometheus/rules
DASHBOARD=ops/grafana/dashboards/shop.json

log "promtool: rules, their unit tests, and the scrape configuration"
promtool check rules "$RULES"/shop.yml
promtool test rules ops/prometheus/tests/shop.test.yml
start_isolated_system shop_observe 5
work=$SYSTEM_WORK
sed "s#/etc/prometheus/rules#$PWD/$RULES#" ops/prometheus/prometheus.yml >"$work/compose-prometheus.yml"
promtool check config "$work/compose-prometheus.yml"

worker_metrics=$(sed -n 's/.*checkout worker starting metrics=\([0-9.:]*\).*/\1/p' "$work/worker.log" | head -1)
[ -n "$worker_metrics" ] || die "the worker did not log its metrics address"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$PWD/$RULES/shop.yml"]
scrape_configs:
  - {job_name: shop-api, static_configs: [{targets: ["${API#http://}"]}]}
  - {job_name: shop-checkout-worker, static_configs: [{targets: ["$worker_metrics"]}]}
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
SYSTEM_PIDS+=($!)
PROM="http://127.0.0.1:$port"
wait_for "curl -sf $PROM/-/ready" 30 || { cat "$work/prometheus.log"; die "Prometheus did not start"; }

log "driving checkouts"
J='content-type: application/json'
for i in 1 2 3 4 5; do
  token=$(register_shopper "observer$i@example.com" "+1415555020$i")
  curl -sf "$API/products/$i" >/dev/null
  curl -sf "$API/products/$i" >/dev/null
  curl -sf -X POST "$API/cart/add" -H "authorization: Bearer $token" -H "$J" -d "{\"product_id\":$i,\"quantity\":1}" >/dev/null
  order=$(curl -sf -X POST "$API/orders/checkout" -H "authorization: Bearer $token" | jq -r .order_id)
  wait_for "curl -sf $API/orders/$order -H 'authorization: Bearer $token' | jq -e '.status != \"PENDING\"'" 30 ||
    die "order $order was not decided"
done

# Instant query; prints the number of series, or fails if Prometheus refuses the expression.
query() {
  local answer
  answer=$(curl -sf --get "$PROM/api/v1/query" --data-urlencode "query=$1") || { echo "refused: $1" >&2; return 1; }
  jq -e '.status == "success"' <<<"$answer" >/dev/null || { echo "failed: $1: $answer" >&2; return 1; }
  jq '.data.result | length' <<<"$answer"
}
has_data() { [ "$(query "$1")" -gt 0 ]; }
# Runs "$@" until it succeeds, for up to $1 seconds.
eventually() {
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds * 10; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}

log "evaluating the dashboard's expressions"
eventually 60 has_data 'checkout_worker_orders_total and on() shop_api_checkouts_total' ||
  die "Prometheus has not scraped the pipeline's metrics"
exprs=0 pipeline=0
while IFS=$'\t' read -r row title expr; do
  expr=${expr//\$__rate_interval/1m}
  query "$expr" >/dev/null || die "panel '$title': Prometheus cannot evaluate: $expr"
  exprs=$((exprs + 1))
  if [ "$row" = "Checkout pipeline" ]; then
    eventually 30 has_data "$expr" || die "pipeline panel '$title' returns no data: $expr"
    pipeline=$((pipeline + 1))
  fi
done < <(jq -r 'reduce .panels[] as $p ({row: "", out: []};
    if $p.type == "row" then .row = $p.title
    else .row as $r | .out += [$p.targets[] | [$r, $p.title, .expr]] end) | .out[] | @tsv' "$DASHBOARD")
[ "$pipeline" -gt 0 ] || die "the dashboard has no 'Checkout pipeline' row"

log "evaluating the alert rules"
rules_ok() {
  curl -sf "$PROM/api/v1/rules" | jq -e '[.data.groups[].rules[]] | length > 0 and all(.health == "ok" and .lastEvaluation != "0001-01-01T00:00:00Z")' >/dev/null
}
wait_for rules_ok 30 || { curl -s "$PROM/api/v1/rules" | jq '.data.groups[].rules[] | select(.health != "ok")'; die "alert rules do not evaluate"; }
rules=0
while IFS= read -r expr; do
  query "$expr" >/dev/null || die "alert rule cannot be evaluated: $expr"
  rules=$((rules + 1))
done < <(curl -sf "$PROM/api/v1/rules" | jq -r '.data.groups[].rules[].query')
echo "observability: $exprs dashboard expressions and $rules alert rules evaluate; $pipeline pipeline expressions return data"

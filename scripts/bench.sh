#!/usr/bin/env bash
# The benchmark suite: for each checkout strategy, a fresh system (release build) and every
# scenario against it; prints the comparison table and writes JSON under results/.
#   scripts/bench.sh                      # the full run BENCHMARKS.md quotes (about 10 minutes)
#   scripts/bench.sh --smoke              # seconds per strategy: keeps the suite working (CI)
#   scripts/bench.sh --strategies queue,row-lock --scenarios checkout-hot
#   scripts/bench.sh scale                # 10 million users with live sessions beside 10,000
#   scripts/bench.sh scale --users 1000000
#   scripts/bench.sh faults               # the fault suite (RELIABILITY.md); --quick is the CI version
#   scripts/bench.sh faults --ha --runs 5 # the failover faults on the stores of scripts/ha.sh
#   scripts/bench.sh idle --seconds 60    # the shop's CPU with no traffic, and the first order after
#   scripts/bench.sh drop                 # a flash-sale drop: 20,000 shoppers, 1,000 units, queue and row-lock
#   scripts/bench.sh drop --smoke         # 400 shoppers, 50 units (debug build, under a minute per strategy)
# Installs and starts PostgreSQL, Redis and the broker first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_services
for arg in "$@"; do
  if [ "$arg" = --ha ]; then
    # The highly available stores, reached through their HAProxy ports.
    scripts/ha.sh up >/dev/null
    eval "$(scripts/ha.sh env)"
  fi
done

profile=release
for arg in "$@"; do [ "$arg" != --smoke ] && [ "$arg" != --quick ] || profile=debug; done
if [ "$profile" = release ]; then
  log "building the services and the load generator (release)"
  cargo build --release --locked --bin shop-api --bin checkout-worker --bin shop-bench
else
  cargo build --locked --bin shop-api --bin checkout-worker --bin shop-bench
fi
command=suite
case "${1:-}" in scale | faults | idle | drop) command=$1; shift ;; esac
exec "./target/$profile/shop-bench" "$command" --bin-dir "target/$profile" "$@"

#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit and integration tests against real
# PostgreSQL, Redis and a Kafka-protocol broker, the README's curl examples. Installs and starts what the tests need
# when it is missing. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_services

# Each integration test makes its own database, topics and Redis keys: drop those of earlier
# runs now, and this run's when it ends, pass or fail.
clean_test_leftovers
trap clean_test_leftovers EXIT

log "cargo fmt --check"
cargo fmt --all -- --check
log "the code's shape: no file over 500 lines, no function over 80, no import circle"
"$SHOP_PYTHON" scripts/shape.py --self-test
"$SHOP_PYTHON" scripts/shape.py --check
log "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "cargo test"
cargo test --locked --workspace -- --test-threads "${TEST_THREADS:-4}"
log "cargo fuzz: every decoder of outside input, ${FUZZ_SECONDS:-15} s each from its seed corpus"
scripts/check-fuzz.sh
# The scripts below and the cleanup use the worker binary.
cargo build --locked --bin checkout-worker
log "README examples"
scripts/check-readme.sh
log "storefront in headless Chromium"
scripts/check-storefront.sh
log "Prometheus: the dashboard's and the alert rules' expressions against a running system"
scripts/check-observability.sh
log "schemathesis against the served OpenAPI document"
scripts/check-api-fuzz.sh
log "deployment files: docker compose and Kubernetes"
scripts/check-deploy.sh
log "benchmark suite, smoke run (checks the suite works and oversells nothing; timing gates nothing)"
scripts/bench.sh --smoke --out "${TMPDIR:-/tmp}/shop-bench-smoke"
scripts/bench.sh scale --smoke --users 20000 --baseline 2000 --out "${TMPDIR:-/tmp}/shop-bench-smoke"
scripts/bench.sh drop --smoke --out "${TMPDIR:-/tmp}/shop-bench-smoke"
log "fault suite, short version: every fault once, then combined, with the invariant checker"
scripts/bench.sh faults --quick --out "${TMPDIR:-/tmp}/shop-faults"
log "failover faults, short version: the highly available stores of scripts/ha.sh under checkout traffic"
# Started only now and stopped afterwards when this run started them: Patroni, etcd and the
# Sentinels would take CPU from every test above.
if ! scripts/ha.sh healthy; then trap 'scripts/ha.sh down; clean_test_leftovers' EXIT; fi
scripts/bench.sh faults --ha --quick --out "${TMPDIR:-/tmp}/shop-faults-ha"

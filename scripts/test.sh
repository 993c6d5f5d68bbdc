#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit and integration tests against real
# PostgreSQL, Redis and a Kafka-protocol broker, the README's curl examples. Installs and starts what the tests need
# when it is missing. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_services

# Each integration test makes its own database; drop those of earlier runs.
psql "$DATABASE_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'shop_test_%' OR datname LIKE 'shop_readme_%' OR datname LIKE 'shop_storefront_%' OR datname LIKE 'shop_observe_%' OR datname LIKE 'shop_fuzz_%' OR datname LIKE 'bench_%'" |
  while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "cargo test"
cargo test --locked --workspace -- --test-threads "${TEST_THREADS:-4}"
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
log "fault suite, short version: every fault once, then combined, with the invariant checker"
scripts/bench.sh faults --quick --out "${TMPDIR:-/tmp}/shop-faults"

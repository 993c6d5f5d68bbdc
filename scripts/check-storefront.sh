#!/usr/bin/env bash
# The storefront end to end in headless Chromium (Debian's package, driven by playwright-core from
# the npm registry), against an API and a worker of its own with 60 demo products, with sign-in
# codes read from the development mail sink. Saves the
# screenshots the README shows under docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm
(cd storefront/e2e && npm ci --no-audit --no-fund --silent)
# Its shoppers register and sign in from one address: more codes than a stranger may ask for.
export SIGN_IN_SENDS_PER_IP=50
start_isolated_system shop_storefront 60
if ! API="$API" WORKER_PID="${SYSTEM_PIDS[1]}" SYSTEM_DB_URL="$SYSTEM_DB_URL" SYSTEM_REDIS_PREFIX="$SYSTEM_REDIS_PREFIX" MAILSINK_HTTP="$MAILSINK_HTTP" node --test storefront/e2e/storefront.test.mjs; then
  tail -n 20 "$SYSTEM_WORK/api.log" "$SYSTEM_WORK/worker.log"
  exit 1
fi

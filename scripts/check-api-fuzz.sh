#!/usr/bin/env bash
# schemathesis (PyPI) against the OpenAPI document a freshly started API serves: every operation,
# every check (no 5xx, status codes, content types, headers and bodies as documented, invalid
# input refused, valid input accepted, auth enforced), requests generated from the schema, signed
# in as a real user with a cart. SCHEMATHESIS_MAX_EXAMPLES sets the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_tools
ensure_python_tools
# Fuzzing sends hundreds of requests a second from one address.
export RATE_LIMIT_PER_IP=0 RATE_LIMIT_PER_SESSION=0
start_isolated_system shop_fuzz 20
work=$SYSTEM_WORK
J='content-type: application/json'
# Registered by the code its registration mails (register_shopper, scripts/lib.sh).
token=$(register_shopper fuzzer@example.com +14155550199)
curl -sf -X POST "$API/cart/add" -H "authorization: Bearer $token" -H "$J" -d '{"product_id":1,"quantity":1}' >/dev/null
# Sign-out and "sign out everywhere" end sessions: they get a second shopper's, signed in by a
# mailed code, so the fuzzing user keeps its own.
register_shopper leaver@example.com +14155550198 >/dev/null
seen=$(python3 scripts/mailsink.py last-id)
curl -sf -X POST "$API/sessions" -H "$J" -d '{"email":"leaver@example.com"}' >/dev/null
code=$(python3 scripts/mailsink.py code leaver@example.com --after "$seen" --subject sign-in)
SIGN_OUT_TOKEN=$(curl -sf -X POST "$API/sessions/verify" -H "$J" \
  -d "{\"email\":\"leaver@example.com\",\"code\":\"$code\"}" | jq -r .session_token)
export SIGN_OUT_TOKEN

# Options in schemathesis.toml (found from the repository root).
schemathesis run "$API/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $token" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --request-timeout 5 \
  --suppress-health-check too_slow \
  --report junit --report-dir "$work/report" ||
  { tail -50 "$work/api.log"; die "schemathesis found problems (above)"; }
# The fuzzing user's session must have lived through it all, or the operations that need one
# were only ever answered 401.
curl -sf "$API/cart" -H "authorization: Bearer $token" >/dev/null ||
  die "the fuzzing user's session ended during the run: authenticated operations were not fuzzed"

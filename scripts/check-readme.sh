#!/usr/bin/env bash
# Runs the curl examples of README.md (between the readme-examples markers) against a freshly
# started API and checkout worker with an empty database, Redis prefix, topics and consumer group
# of their own. Every request must succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

start_isolated_system shop_readme
work=$SYSTEM_WORK
awk '/<!-- readme-examples:begin -->/ {on = 1; next} /<!-- readme-examples:end -->/ {on = 0} on' README.md |
  grep -v '^```' >"$work/examples.sh"
[ -s "$work/examples.sh" ] || die "README.md has no readme-examples block"

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
if API="$API" bash "$work/run.sh" >"$work/out.log"; then
  echo "readme: $(wc -l <"$work/count") passed, 0 failed"
else
  cat "$work/out.log" "$work/worker.log"
  echo "readme: $(wc -l <"$work/count") passed, 1 failed"
  exit 1
fi

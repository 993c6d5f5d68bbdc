# Shared by scripts/run.sh and scripts/test.sh: install and start what the shop needs, when it is
# missing, on loopback. Every function is idempotent: running it twice changes nothing.
# shellcheck shell=bash

if [ "$(id -u)" = 0 ]; then
  SHOP_STATE_DIR=${SHOP_STATE_DIR:-/var/lib/shop}   # broker and Redis data
  SHOP_TOOLS_DIR=${SHOP_TOOLS_DIR:-/opt/shop}       # the broker, built once and reused
else
  SHOP_STATE_DIR=${SHOP_STATE_DIR:-$HOME/.local/state/shop}
  SHOP_TOOLS_DIR=${SHOP_TOOLS_DIR:-$HOME/.local/share/shop}
fi
TANSU_VERSION=0.6.0
TANSU="$SHOP_TOOLS_DIR/tansu-$TANSU_VERSION/bin/tansu"
export DATABASE_URL=${DATABASE_URL:-postgres://shop:shop@127.0.0.1:5432/shop}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

_apt_updated=
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (Debian packages)"
  if [ -z "$_apt_updated" ]; then as_root apt-get update -qq; _apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Waits up to $2 seconds for command $1 to succeed.
wait_for() {
  local what=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    if eval "$what" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

ensure_tools() {
  apt_install curl jq ca-certificates
}

ensure_postgres() {
  if ! command -v pg_lsclusters >/dev/null || ! command -v pg_isready >/dev/null; then
    apt_install postgresql postgresql-client
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    local cluster
    cluster=$(pg_lsclusters -h | awk '$3 == 5432 {print $1" "$2; exit}')
    if [ -z "$cluster" ]; then
      local version
      version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)
      [ -n "$version" ] || die "PostgreSQL is installed but no server version was found"
      log "creating PostgreSQL $version cluster"
      as_root pg_createcluster "$version" main --port 5432 >/dev/null
      cluster="$version main"
    fi
    log "starting PostgreSQL ($cluster)"
    # shellcheck disable=SC2086
    as_root pg_ctlcluster $cluster start || true
    wait_for "pg_isready -q -h 127.0.0.1 -p 5432" 30 || die "PostgreSQL did not start; see /var/log/postgresql/"
  fi
  if ! psql "$DATABASE_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    log "creating PostgreSQL role and database 'shop'"
    create_shop_database as_root runuser -u postgres -- psql
    psql "$DATABASE_URL" -qtAc 'SELECT 1' >/dev/null || die "cannot connect to $DATABASE_URL"
  fi
}

# Creates the role and the database 'shop' where they are missing, through the psql command
# given as arguments (a superuser's).
create_shop_database() {
  "$@" -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop') THEN
    CREATE ROLE shop LOGIN CREATEDB PASSWORD 'shop';
  END IF;
END $$;
SELECT 'CREATE DATABASE shop OWNER shop' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'shop')\gexec
SQL
}

# The bench's per-statement profile needs pg_stat_statements loaded by the local cluster. Set up
# once (the only restart this script ever makes), best effort: without it the bench prints no
# profile and everything else works.
ensure_statement_stats() {
  [ "$(id -u)" = 0 ] || command -v sudo >/dev/null || return 0
  command -v pg_lsclusters >/dev/null || return 0
  if [ "$(pg_super -c 'SHOW shared_preload_libraries' 2>/dev/null)" = "" ]; then
    local cluster
    cluster=$(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 {print $1" "$2; exit}')
    [ -n "$cluster" ] || return 0
    log "loading pg_stat_statements (one PostgreSQL restart)"
    pg_super -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null || return 0
    # shellcheck disable=SC2086
    as_root pg_ctlcluster $cluster restart || true
    wait_for "pg_isready -q -h 127.0.0.1 -p 5432" 30 || die "PostgreSQL did not restart; see /var/log/postgresql/"
  fi
  pg_super -d shop -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null 2>&1 || true
}

pg_super() { as_root runuser -u postgres -- psql -qtAX "$@"; }

ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis"
    as_root mkdir -p "$SHOP_STATE_DIR/redis"
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 \
      --dir "$SHOP_STATE_DIR/redis" --appendonly yes --appendfsync everysec \
      --logfile "$SHOP_STATE_DIR/redis/redis.log"
    wait_for "redis-cli -h 127.0.0.1 -p 6379 ping" 20 || die "Redis did not start; see $SHOP_STATE_DIR/redis/redis.log"
  fi
}

broker_up() { (exec 3<>"/dev/tcp/${KAFKA_BROKERS%%:*}/${KAFKA_BROKERS##*:}") 2>/dev/null; }

# The Kafka-protocol broker: tansu (Apache-2.0, a Kafka-compatible broker in Rust), a Rust crate
# built once into $SHOP_TOOLS_DIR, storing its log durably in SQLite under $SHOP_STATE_DIR.
ensure_broker() {
  if broker_up; then return 0; fi
  if [ ! -x "$TANSU" ]; then
    log "building the broker (tansu $TANSU_VERSION, cargo install) once; this takes 10 to 25 minutes"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore \
      --root "$SHOP_TOOLS_DIR/tansu-$TANSU_VERSION" --quiet
  fi
  log "starting the broker on $KAFKA_BROKERS"
  mkdir -p "$SHOP_STATE_DIR/tansu"
  # Detached from the caller's output (a broker started by a piped command must not hold its pipe)
  # and from its session (a Ctrl-C that stops scripts/run.sh must not reach the broker).
  (
    cd "$SHOP_STATE_DIR/tansu" &&
      exec setsid nohup "$TANSU" broker --listener-url "tcp://$KAFKA_BROKERS" --advertised-listener-url "tcp://$KAFKA_BROKERS" \
        --storage-engine sqlite://tansu.db >>tansu.log 2>&1 </dev/null
  ) &
  wait_for broker_up 30 || die "the broker did not start; see $SHOP_STATE_DIR/tansu/tansu.log"
}

# Python tools from PyPI (kubernetes-validate, schemathesis, aiosmtpd for the mail sink), pinned,
# in a virtualenv of their own under $SHOP_TOOLS_DIR that is made once and reused. Puts its bin/
# on PATH and names its interpreter in SHOP_PYTHON (the tests start mail sinks with it).
PY_TOOLS="$SHOP_TOOLS_DIR/pytools"
export SHOP_PYTHON="$PY_TOOLS/bin/python3"
ensure_python_tools() {
  local wanted=(kubernetes-validate==1.37.0 schemathesis==4.32.5 aiosmtpd==1.4.6)
  if [ ! -x "$PY_TOOLS/bin/kubernetes-validate" ] || [ ! -x "$PY_TOOLS/bin/schemathesis" ] ||
    ! "$SHOP_PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    log "installing ${wanted[*]} (PyPI) into $PY_TOOLS"
    python3 -m venv "$PY_TOOLS"
    "$PY_TOOLS/bin/pip" install -q --disable-pip-version-check "${wanted[@]}"
  fi
  export PATH="$PY_TOOLS/bin:$PATH"
}

# The development mail sink (scripts/mailsink.py): SMTP on $MAILSINK_SMTP, the mailbox on
# http://$MAILSINK_HTTP/. Every mail the shop sends on this machine lands there, kept in
# $SHOP_STATE_DIR/mailsink/mail.jsonl.
export MAILSINK_SMTP=${MAILSINK_SMTP:-127.0.0.1:1025}
export MAILSINK_HTTP=${MAILSINK_HTTP:-127.0.0.1:8025}
export SMTP_URL=${SMTP_URL:-smtp://$MAILSINK_SMTP}
ensure_mailsink() {
  if curl -fsS "http://$MAILSINK_HTTP/healthz" >/dev/null 2>&1; then return 0; fi
  ensure_python_tools
  log "starting the development mail sink (SMTP $MAILSINK_SMTP, mailbox http://$MAILSINK_HTTP/)"
  mkdir -p "$SHOP_STATE_DIR/mailsink"
  (
    exec setsid nohup "$SHOP_PYTHON" "$PWD/scripts/mailsink.py" serve --smtp "$MAILSINK_SMTP" --http "$MAILSINK_HTTP" \
      --store "$SHOP_STATE_DIR/mailsink/mail.jsonl" >>"$SHOP_STATE_DIR/mailsink/mailsink.log" 2>&1 </dev/null
  ) &
  wait_for "curl -fsS http://$MAILSINK_HTTP/healthz" 30 || die "the mail sink did not start; see $SHOP_STATE_DIR/mailsink/mailsink.log"
}

# Everything the shop needs, installed and started when missing.
ensure_services() {
  ensure_tools
  ensure_postgres
  ensure_statement_stats
  ensure_redis
  ensure_broker
  ensure_mailsink
}

# Deletes the Redis keys matching pattern $1 (inside Redis: keys may hold any byte).
redis_delete() {
  redis-cli -h 127.0.0.1 -p 6379 EVAL "local c = '0'
    repeat
      local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000)
      c = r[1]
      for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end
    until c == '0'
    return 0" 0 "$1" >/dev/null
}

# What earlier test and benchmark runs left behind: their databases, topics and Redis keys
# (tests name them shop_test_… / test-… / test:…, scripts' systems shop_<script>_<pid>, and
# benchmarks bench_…). The shop of scripts/run.sh (database shop, topics shop.…, keys shop:…) is
# never touched.
clean_test_leftovers() {
  psql "$DATABASE_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'shop\_test\_%' OR datname LIKE 'shop\_readme\_%' OR datname LIKE 'shop\_storefront\_%' OR datname LIKE 'shop\_observe\_%' OR datname LIKE 'shop\_fuzz\_%' OR datname LIKE 'bench\_%'" |
    while read -r db; do
      # WITH (FORCE) cannot end a backend it may not signal (an autovacuum worker busy on a big
      # benchmark database): try again, and leave what still stays to the next run's clean-up
      # rather than fail this run at its very end.
      for _ in 1 2 3; do
        psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" 2>/dev/null && break
        sleep 1
      done
    done
  # Topics stay: tansu 0.6.0 deletes every topic on the broker when it deletes one, a running
  # shop's too (RELIABILITY.md, "Known issues"), so `checkout-worker delete-topics` refuses while
  # other topics live there.
  for pattern in 'test:*' 'bench_*' 'shop_readme_*' 'shop_storefront_*' 'shop_observe_*' 'shop_fuzz_*'; do
    redis_delete "$pattern"
  done
}

# Starts an API and a checkout worker (debug builds) on an empty database, Redis prefix, topics and
# consumer group of their own, named after $1, with $2 demo products (default none). Mail goes to
# the development mail sink. Sets API (its URL), SYSTEM_DB_URL, SYSTEM_REDIS_PREFIX and SYSTEM_WORK
# (a scratch folder with api.log and worker.log); everything is stopped and dropped when the
# calling script exits.
start_isolated_system() {
  local name="$1_$$" demo=${2:-0}
  ensure_mailsink
  SYSTEM_WORK=$(mktemp -d)
  SYSTEM_PIDS=()
  trap stop_isolated_system EXIT
  cargo build --locked --bin shop-api --bin checkout-worker
  psql "$DATABASE_URL" -qc "CREATE DATABASE $name"
  SYSTEM_DB_URL="${DATABASE_URL%/*}/$name"
  SYSTEM_DB="$name"
  if [ "$demo" -gt 0 ]; then DATABASE_URL=$SYSTEM_DB_URL ./target/debug/shop-api load-demo "$demo" 2>/dev/null; fi
  SYSTEM_REDIS_PREFIX="$name:"
  DATABASE_URL=$SYSTEM_DB_URL REDIS_KEY_PREFIX="$name:" API_ADDR=127.0.0.1:0 DEV_MAILBOX_URL="http://$MAILSINK_HTTP/" \
    ./target/debug/shop-api serve >"$SYSTEM_WORK/api.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  DATABASE_URL=$SYSTEM_DB_URL REDIS_KEY_PREFIX="$name:" INVENTORY_TOPIC="$name.inventory" \
    ORDER_EVENTS_TOPIC="$name.order-events" DEAD_LETTER_TOPIC="$name.dead-letters" \
    CONSUMER_GROUP="$name" WORKER_METRICS_ADDR=127.0.0.1:0 \
    ./target/debug/checkout-worker run >"$SYSTEM_WORK/worker.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  wait_for "grep -q 'shop API listening' '$SYSTEM_WORK/api.log'" 30 || { cat "$SYSTEM_WORK/api.log"; die "API did not start"; }
  wait_for "grep -q 'partitions assigned' '$SYSTEM_WORK/worker.log'" 60 || { cat "$SYSTEM_WORK/worker.log"; die "worker did not start"; }
  API="http://$(sed -n 's/.*shop API listening address=\([0-9.:]*\).*/\1/p' "$SYSTEM_WORK/api.log" | head -1)"
}

# Registers a shopper on $API as the storefront does: POST /users/register with email $1 and
# phone number $2, the code the registration mails (read from the development mail sink), then
# POST /sessions/verify. Prints the session token; fails if a step does.
register_shopper() {
  local seen code
  seen=$(python3 scripts/mailsink.py last-id) || return 1
  curl -sf -X POST "$API/users/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"phone_number\":\"$2\"}" >/dev/null || return 1
  code=$(python3 scripts/mailsink.py code "$1" --after "$seen" --subject registration) || return 1
  curl -sf -X POST "$API/sessions/verify" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"code\":\"$code\"}" | jq -er .session_token
}

stop_isolated_system() {
  [ ${#SYSTEM_PIDS[@]} -eq 0 ] || kill "${SYSTEM_PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "${SYSTEM_DB:-}" ] || psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $SYSTEM_DB WITH (FORCE)" >/dev/null 2>&1 || true
  [ -z "${SYSTEM_DB:-}" ] || redis_delete "$SYSTEM_DB:*"
  [ -z "${SYSTEM_WORK:-}" ] || rm -rf "$SYSTEM_WORK"
}

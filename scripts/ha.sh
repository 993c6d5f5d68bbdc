#!/usr/bin/env bash
# The highly available stores on this machine, for `scripts/run.sh --ha` and the fault suite's
# failover faults (`scripts/bench.sh faults --ha`):
#
#   PostgreSQL  two PostgreSQL 15 servers run by Patroni, each in a network namespace of its own
#               (a host of its own: it can be cut off), synchronous replication, automatic
#               failover through etcd; HAProxy on 127.0.0.1:5440 sends clients to the primary
#               (Patroni's REST API answers GET /primary 200 only there).
#   Redis       a master and a replica, three Sentinels that promote the replica when the master
#               dies; HAProxy on 127.0.0.1:6390 sends clients to whichever reports role:master.
#
#   scripts/ha.sh up            install what is missing, start everything, wait until healthy
#   scripts/ha.sh down          stop everything (the data stays under $SHOP_STATE_DIR/ha)
#   scripts/ha.sh destroy       stop everything and delete the data
#   scripts/ha.sh status        every node and its role
#   scripts/ha.sh env           the shop's DATABASE_URL and REDIS_URL, as export lines
#   scripts/ha.sh healthy       whether it is healthy now (exit status)
#   scripts/ha.sh wait-healthy  until PostgreSQL has a primary and a synchronous standby and
#                               Redis a master with a replica in sync (fails after 60 s)
#   scripts/ha.sh kill   pg-primary|pg-standby|redis-master|NODE   SIGKILL of every process of it
#   scripts/ha.sh cut    pg-primary|NODE    every packet to and from the node dropped (half-open)
#   scripts/ha.sh start  NODE               start a node again (after kill); it rejoins by itself
#   scripts/ha.sh heal   NODE               undo a cut
#   scripts/ha.sh which  pg-primary|pg-standby|redis-master       the node's name
#   scripts/ha.sh sync   on|off             synchronous replication (Patroni's synchronous_mode),
#                                           for measuring what it costs (BENCHMARKS.md)
# Nodes: pg1, pg2 (PostgreSQL), redis1, redis2 (Redis). Needs root (namespaces, packages).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

HA_DIR="$SHOP_STATE_DIR/ha"
HA_PG_PORT=5440
HA_REDIS_PORT=6390
HA_STATS=127.0.0.1:8404
ETCD_PORT=23790
PG_NODES=(pg1 pg2)
REDIS_NODES=(redis1 redis2)
SENTINEL_PORTS=(26391 26392 26393)
# Passwords of this machine-local cluster; a real deployment takes them from its secret store.
PG_SUPERUSER_PASSWORD=${HA_SUPERUSER_PASSWORD:-shop-ha-superuser}
PG_REPLICATION_PASSWORD=${HA_REPLICATION_PASSWORD:-shop-ha-replication}

node_index() { echo "${1#pg}"; }                     # pg2 -> 2
node_ns() { echo "shop-$1"; }                        # the node's network namespace
node_ip() { echo "10.231.$(node_index "$1").2"; }    # the node's address
gateway_ip() { echo "10.231.$(node_index "$1").1"; } # this machine, seen from the node
redis_port() { echo "639${1#redis}"; }               # redis2 -> 6392

pg_url_super() { echo "postgres://postgres:$PG_SUPERUSER_PASSWORD@127.0.0.1:$HA_PG_PORT/postgres"; }

ensure_ha_packages() {
  [ "$(id -u)" = 0 ] || die "the HA topology needs root: network namespaces and Debian packages"
  ensure_tools
  command -v pg_isready >/dev/null || apt_install postgresql postgresql-client
  apt_install patroni etcd-server haproxy redis-server redis-sentinel iptables iproute2 procps
  [ -x "$(pg_bin)/pg_ctl" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
}

# The newest installed PostgreSQL's binaries (Debian keeps them off PATH), or $PG_BIN.
pg_bin() { echo "${PG_BIN:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1)}"; }

# The node's network namespace with a veth pair to this machine; IP forwarding lets the two
# nodes reach each other through it.
ensure_netns() {
  local node=$1 ns host_if node_if
  ns=$(node_ns "$node")
  host_if="shop$node" node_if="shop${node}n"
  ip netns list | grep -qw "$ns" || ip netns add "$ns"
  if ! ip link show "$host_if" >/dev/null 2>&1; then
    ip link add "$host_if" type veth peer name "$node_if"
    ip link set "$node_if" netns "$ns"
    ip addr add "$(gateway_ip "$node")/24" dev "$host_if"
    ip link set "$host_if" up
    ip netns exec "$ns" ip addr add "$(node_ip "$node")/24" dev "$node_if"
    ip netns exec "$ns" ip link set "$node_if" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip route add default via "$(gateway_ip "$node")"
  fi
  sysctl -qw net.ipv4.ip_forward=1
  # The nodes reach each other through this machine: let that through a FORWARD policy of DROP
  # (as a Docker engine sets).
  iptables -C FORWARD -s 10.231.0.0/16 -d 10.231.0.0/16 -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD -s 10.231.0.0/16 -d 10.231.0.0/16 -j ACCEPT
  # A cut that an aborted run left in place.
  heal_node "$node"
}

etcd_up() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q true; }

ensure_etcd() {
  etcd_up && return 0
  log "starting etcd (Patroni's consensus store) on port $ETCD_PORT"
  mkdir -p "$HA_DIR/etcd"
  local listen="http://127.0.0.1:$ETCD_PORT" node
  for node in "${PG_NODES[@]}"; do listen+=",http://$(gateway_ip "$node"):$ETCD_PORT"; done
  setsid nohup etcd --name shop-ha --data-dir "$HA_DIR/etcd/data" \
    --listen-client-urls "$listen" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster shop-ha=http://127.0.0.1:23800 >>"$HA_DIR/etcd/etcd.log" 2>&1 </dev/null &
  wait_for etcd_up 30 || die "etcd did not start; see $HA_DIR/etcd/etcd.log"
}

write_patroni_config() {
  local node=$1 dir="$HA_DIR/$1" ip
  ip=$(node_ip "$node")
  mkdir -p "$dir"
  cat >"$dir/patroni.yml" <<YAML
scope: shop
name: $node
log: {level: INFO}
restapi:
  listen: $ip:8008
  connect_address: $ip:8008
etcd3:
  host: $(gateway_ip "$node"):$ETCD_PORT
  # etcd advertises 127.0.0.1, which is the node's own loopback inside its namespace: use only
  # the address given here.
  use_proxies: true
bootstrap:
  dcs:
    # Failover within about ttl seconds of the primary's loss; loop_wait + 2 × retry_timeout must
    # stay below ttl.
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    # A commit is acknowledged once the synchronous standby has it. With the standby gone the
    # primary goes on alone (not strict) rather than stall every checkout; Patroni then never
    # promotes a standby that was not synchronous.
    synchronous_mode: true
    synchronous_mode_strict: false
    # etcd is one process here: while it is unreachable, a primary that still reaches every
    # other node over Patroni's REST API stays primary instead of demoting itself.
    failsafe_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 300
        wal_log_hints: "on"
        synchronous_commit: "on"
        wal_keep_size: 256MB
  initdb: [{encoding: UTF8}, {locale: C.UTF-8}, data-checksums]
postgresql:
  listen: $ip:5432
  connect_address: $ip:5432
  data_dir: $dir/data
  bin_dir: $(pg_bin)
  pgpass: $dir/pgpass
  authentication:
    superuser: {username: postgres, password: $PG_SUPERUSER_PASSWORD}
    replication: {username: replicator, password: $PG_REPLICATION_PASSWORD}
    rewind: {username: postgres, password: $PG_SUPERUSER_PASSWORD}
  pg_hba:
    - local all all trust
    - host replication replicator 10.231.0.0/16 scram-sha-256
    - host all all 10.231.0.0/16 scram-sha-256
  parameters:
    unix_socket_directories: $dir
YAML
  chown -R postgres:postgres "$dir"
  chmod 600 "$dir/patroni.yml"
}

pg_role() { curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$(node_ip "$1"):8008/$2" 2>/dev/null; }

start_pg_node() {
  local node=$1
  ensure_netns "$node"
  if pgrep -f "patroni $HA_DIR/$node/patroni.yml" >/dev/null; then return 0; fi
  write_patroni_config "$node"
  log "starting PostgreSQL node $node (Patroni, $(node_ip "$node"):5432, namespace $(node_ns "$node"))"
  # setpriv execs Patroni itself (runuser would stay as its parent and kill it 2 s after a
  # SIGTERM, before PostgreSQL has stopped).
  ip netns exec "$(node_ns "$node")" setsid setpriv --reuid=postgres --regid=postgres --init-groups \
    nohup patroni "$HA_DIR/$node/patroni.yml" >>"$HA_DIR/$node/patroni.log" 2>&1 </dev/null &
}

redis_role() { redis-cli -p "$1" info replication 2>/dev/null | sed -n 's/^role:\(.*\)\r$/\1/p'; }

start_redis_node() {
  local node=$1 port dir other master
  port=$(redis_port "$node")
  dir="$HA_DIR/$node"
  redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
  mkdir -p "$dir"
  # A node that comes back follows the master: the one the Sentinels name, or, while they have
  # not yet noticed that this node was lost, the other node once it says role:master. Only a
  # node with no master anywhere (the very first start) starts as a master: redis1.
  for other in "${REDIS_NODES[@]}"; do
    [ "$other" != "$node" ] && [ "$(redis_role "$(redis_port "$other")")" = master ] && master="127.0.0.1 $(redis_port "$other")"
  done
  [ -n "${master:-}" ] || master=$(redis-cli -p "${SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name shop 2>/dev/null | paste -sd' ' || true)
  local follow=()
  if [ -n "$master" ] && [ "$master" != "127.0.0.1 $port" ]; then
    follow=(--replicaof "${master% *}" "${master#* }")
  elif [ -z "$master" ] && [ "$node" != redis1 ]; then
    follow=(--replicaof 127.0.0.1 "$(redis_port redis1)")
  fi
  log "starting Redis node $node on 127.0.0.1:$port${follow:+ (replica of ${follow[*]:1})}"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --appendonly yes --appendfsync everysec --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
    "${follow[@]}"
  wait_for "redis-cli -p $port ping" 20 || die "Redis $node did not start; see $dir/redis.log"
}

start_sentinels() {
  local port dir
  for port in "${SENTINEL_PORTS[@]}"; do
    redis-cli -p "$port" ping >/dev/null 2>&1 && continue
    dir="$HA_DIR/sentinel$port"
    mkdir -p "$dir"
    # Sentinel rewrites its file with what it learns (the current master, the other Sentinels).
    [ -e "$dir/sentinel.conf" ] || cat >"$dir/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir
sentinel monitor shop 127.0.0.1 $(redis_port redis1) 2
sentinel down-after-milliseconds shop 2000
sentinel failover-timeout shop 10000
sentinel parallel-syncs shop 1
CONF
    redis-server "$dir/sentinel.conf" --sentinel --daemonize yes --logfile "$dir/sentinel.log" \
      --pidfile "$dir/sentinel.pid"
  done
}

write_haproxy_config() {
  local node
  mkdir -p "$HA_DIR/haproxy"
  {
    cat <<CFG
global
  maxconn 4000
  pidfile $HA_DIR/haproxy/haproxy.pid
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
# PostgreSQL: only the node whose Patroni answers GET /primary 200. A node marked down has its
# client connections closed, so a primary cut off mid-query is an error at once, not a hang.
listen postgres
  bind 127.0.0.1:$HA_PG_PORT
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
CFG
    for node in "${PG_NODES[@]}"; do echo "  server $node $(node_ip "$node"):5432 check port 8008"; done
    cat <<CFG
# Redis: only the node that says role:master.
listen redis
  bind 127.0.0.1:$HA_REDIS_PORT
  option tcp-check
  tcp-check connect
  tcp-check send PING\r\n
  tcp-check expect string +PONG
  tcp-check send info\ replication\r\n
  tcp-check expect string role:master
  tcp-check send QUIT\r\n
  tcp-check expect string +OK
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
CFG
    for node in "${REDIS_NODES[@]}"; do echo "  server $node 127.0.0.1:$(redis_port "$node") check"; done
    cat <<CFG
listen stats
  mode http
  bind $HA_STATS
  stats enable
  stats uri /
CFG
  } >"$HA_DIR/haproxy/haproxy.cfg"
}

ensure_haproxy() {
  write_haproxy_config
  haproxy -c -q -f "$HA_DIR/haproxy/haproxy.cfg" || die "bad HAProxy configuration"
  if [ -e "$HA_DIR/haproxy/haproxy.pid" ] && kill -0 "$(cat "$HA_DIR/haproxy/haproxy.pid")" 2>/dev/null; then return 0; fi
  log "starting HAProxy (PostgreSQL primary on 127.0.0.1:$HA_PG_PORT, Redis master on 127.0.0.1:$HA_REDIS_PORT)"
  haproxy -D -f "$HA_DIR/haproxy/haproxy.cfg"
}

# Which PostgreSQL node has the role (primary, or sync for the synchronous standby).
pg_node_with() {
  local node
  for node in "${PG_NODES[@]}"; do
    [ "$(pg_role "$node" "$1")" = 200 ] && { echo "$node"; return 0; }
  done
  return 1
}

redis_master() {
  local addr
  addr=$(redis-cli -p "${SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name shop 2>/dev/null | tail -1)
  [ -n "$addr" ] || return 1
  echo "redis${addr: -1}"
}

which_node() {
  case "$1" in
    pg-primary) pg_node_with primary ;;
    pg-standby) pg_node_with sync ;;
    redis-master) redis_master ;;
    pg1 | pg2 | redis1 | redis2) echo "$1" ;;
    *) die "no such node: $1" ;;
  esac
}

sync_names() { psql "$(pg_url_super)" -qtAc 'SHOW synchronous_standby_names'; }

# Patroni's /sync answers from the DCS, which can still name a standby from before a restart that
# has not streamed yet; Patroni never promotes such a standby (it lags by more than
# maximum_lag_on_failover). So the primary itself must see it streaming synchronously, that close.
sync_standby_streams() {
  local standby=$1
  [ "$(psql "$(pg_url_super)" -qtAc "SELECT count(*) FROM pg_stat_replication
    WHERE application_name = '$standby' AND state = 'streaming' AND sync_state = 'sync'
      AND pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) < 1048576" 2>/dev/null)" = 1 ]
}

healthy() {
  local standby
  pg_node_with primary >/dev/null && standby=$(pg_node_with sync) || return 1
  sync_standby_streams "$standby" || return 1
  local master
  master=$(redis_master) || return 1
  redis-cli -p "$(redis_port "$master")" info replication | grep -q 'slave0:.*state=online' || return 1
  [ "$(redis-cli -p "$HA_REDIS_PORT" ping 2>/dev/null)" = PONG ]
}


up() {
  ensure_ha_packages
  mkdir -p "$HA_DIR"
  chown postgres:postgres "$HA_DIR"
  local node
  for node in "${PG_NODES[@]}"; do ensure_netns "$node"; done
  ensure_etcd
  for node in "${PG_NODES[@]}"; do start_pg_node "$node"; done
  start_sentinels
  for node in "${REDIS_NODES[@]}"; do start_redis_node "$node"; done
  ensure_haproxy
  wait_for healthy 120 || { status >&2; die "the HA topology did not become healthy within 120 s (logs under $HA_DIR)"; }
  create_shop_database psql "$(pg_url_super)"
  status
}

kill_node() {
  local node
  node=$(which_node "$1") || die "no node is $1 now"
  case "$node" in
    pg*) ip netns pids "$(node_ns "$node")" | xargs -r kill -9 2>/dev/null || true ;;
    redis*)
      local pidfile="$HA_DIR/$node/redis.pid"
      [ -e "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
      ;;
  esac
  echo "$node"
}

cut_node() {
  local node ns
  node=$(which_node "$1") || die "no node is $1 now"
  [[ $node == pg* ]] || die "only PostgreSQL nodes have a network of their own"
  ns=$(node_ns "$node")
  ip netns exec "$ns" iptables -C INPUT -i "shop${node}n" -j DROP 2>/dev/null ||
    ip netns exec "$ns" iptables -I INPUT -i "shop${node}n" -j DROP
  ip netns exec "$ns" iptables -C OUTPUT -o "shop${node}n" -j DROP 2>/dev/null ||
    ip netns exec "$ns" iptables -I OUTPUT -o "shop${node}n" -j DROP
  echo "$node"
}

heal_node() {
  local node=$1 ns
  ns=$(node_ns "$node")
  while ip netns exec "$ns" iptables -D INPUT -i "shop${node}n" -j DROP 2>/dev/null; do :; done
  while ip netns exec "$ns" iptables -D OUTPUT -o "shop${node}n" -j DROP 2>/dev/null; do :; done
}

start_node() {
  case "$1" in
    pg1 | pg2) start_pg_node "$1" ;;
    redis1 | redis2) start_redis_node "$1" ;;
    *) die "no such node: $1" ;;
  esac
}

status() {
  local node
  echo "PostgreSQL (Patroni, synchronous replication; clients: 127.0.0.1:$HA_PG_PORT via HAProxy)"
  for node in "${PG_NODES[@]}"; do
    local role
    role=$(curl -s --max-time 1 "http://$(node_ip "$node"):8008/patroni" | jq -r '.role + " " + .state' 2>/dev/null || true)
    [ "$(pg_role "$node" sync)" = 200 ] && role+=" (synchronous standby)"
    printf '  %-6s %s:5432  namespace %s  %s\n' "$node" "$(node_ip "$node")" "$(node_ns "$node")" "${role:-down}"
  done
  echo "Redis (Sentinel; clients: 127.0.0.1:$HA_REDIS_PORT via HAProxy)"
  for node in "${REDIS_NODES[@]}"; do
    local port role
    port=$(redis_port "$node")
    role=$(redis_role "$port")
    printf '  %-6s 127.0.0.1:%s  %s\n' "$node" "$port" "${role:-down}"
  done
  local port
  for port in "${SENTINEL_PORTS[@]}"; do
    printf '  sentinel 127.0.0.1:%s  %s\n' "$port" "$(redis-cli -p "$port" ping 2>/dev/null || echo down)"
  done
  echo "etcd 127.0.0.1:$ETCD_PORT $(etcd_up && echo up || echo down); HAProxy stats http://$HA_STATS/"
}

stop_all() {
  local node port
  for node in "${PG_NODES[@]}"; do
    ip netns list | grep -qw "$(node_ns "$node")" && heal_node "$node"
    # SIGTERM lets Patroni stop PostgreSQL cleanly; what is left after 30 s is killed.
    pkill -f "patroni $HA_DIR/$node/patroni.yml" 2>/dev/null || true
  done
  wait_for "! pgrep -f 'patroni $HA_DIR/'" 30 || pkill -9 -f "patroni $HA_DIR/" || true
  for node in "${PG_NODES[@]}"; do
    ip netns pids "$(node_ns "$node")" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  for port in "${SENTINEL_PORTS[@]}" "$(redis_port redis1)" "$(redis_port redis2)"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  [ -e "$HA_DIR/haproxy/haproxy.pid" ] && kill "$(cat "$HA_DIR/haproxy/haproxy.pid")" 2>/dev/null || true
  pkill -f "etcd --name shop-ha" 2>/dev/null || true
  wait_for "! pgrep -f 'etcd --name shop-ha'" 30 || true
}

case "${1:-}" in
  up) up ;;
  down) stop_all ;;
  destroy)
    stop_all
    for node in "${PG_NODES[@]}"; do ip netns del "$(node_ns "$node")" 2>/dev/null || true; done
    rm -rf "$HA_DIR"
    ;;
  status) status ;;
  env)
    echo "export DATABASE_URL=postgres://shop:shop@127.0.0.1:$HA_PG_PORT/shop"
    echo "export REDIS_URL=redis://127.0.0.1:$HA_REDIS_PORT"
    ;;
  healthy) healthy ;;
  wait-healthy) wait_for healthy 60 || { status >&2; die "not healthy within 60 s"; } ;;
  which) which_node "${2:?which node}" ;;
  sync)
    case "${2:-}" in on) mode=true ;; off) mode=false ;; *) die "sync on|off" ;; esac
    patronictl -c "$HA_DIR/${PG_NODES[0]}/patroni.yml" edit-config --force --quiet \
      --set "synchronous_mode=$mode" >/dev/null
    # Patroni applies it within a loop; wait until the primary's setting says so.
    if [ "$mode" = true ]; then want='[ -n "$(sync_names)" ]'; else want='[ -z "$(sync_names)" ]'; fi
    wait_for "$want" 30 || die "synchronous_standby_names did not follow synchronous_mode=$mode"
    ;;
  kill) kill_node "${2:?which node}" ;;
  cut) cut_node "${2:?which node}" ;;
  heal) heal_node "${2:?which node}" ;;
  start) start_node "${2:?which node}" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

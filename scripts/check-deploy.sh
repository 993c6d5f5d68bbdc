#!/usr/bin/env bash
# Validates the deployment artefacts with real tools: docker-compose.kafka.yml, alone and with its
# three-broker override deploy/compose/kafka-ha.yml, with a compose parser (Debian's
# docker-compose); the built-in kinds of deploy/k8s against the Kubernetes schemas
# (kubernetes-validate, strict). kubernetes-validate has no schemas for the operators' resources
# (CloudNativePG's Cluster, the Redis operator's RedisReplication, Strimzi's Kafka and
# KafkaNodePool), so for those it checks what the shop relies on field by field: replica counts,
# synchronous replication, Sentinel, Kafka's replication factor and min.insync.replicas, and that
# config.yaml's URLs name the Services those resources make (REDIS_URL: the HAProxy in front of
# Redis, whose configuration `haproxy -c` checks where HAProxy is installed). Also the worker's
# replica bound (never more workers than inventory partitions) and the PostgreSQL connection
# budget.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

compose_ha=""
if ! command -v docker-compose >/dev/null; then
  apt_install docker-compose || log "no compose parser is installable here; skipping the compose check"
fi
if command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.kafka.yml config -q
  echo "compose: docker-compose.kafka.yml is valid ($(docker-compose -f docker-compose.kafka.yml config --services | wc -l) services)"
  ha=(-f docker-compose.kafka.yml -f deploy/compose/kafka-ha.yml)
  docker-compose "${ha[@]}" config -q
  compose_ha=$(mktemp)
  trap 'rm -f "$compose_ha"' EXIT
  docker-compose "${ha[@]}" config >"$compose_ha"
fi

ensure_python_tools
"$PY_TOOLS/bin/python" - deploy/k8s/kustomization.yaml "$compose_ha" <<'PY'
import os, re, shutil, subprocess, sys, tempfile
from urllib.parse import urlsplit
import kubernetes_validate, yaml

kustomization, compose_ha = sys.argv[1], sys.argv[2]
root = os.path.dirname(kustomization)
resources = yaml.safe_load(open(kustomization))["resources"]
unlisted = sorted({f for f in os.listdir(root) if f.endswith(".yaml")}
                  - {os.path.basename(kustomization)} - set(resources))
assert not unlisted, f"{root}: {unlisted} not in kustomization.yaml's resources (never applied)"
docs = [(f, d) for f in (os.path.join(root, r) for r in resources)
        for d in yaml.safe_load_all(open(f)) if d]

# The operators' resources (no schema in kubernetes-validate); every other document must be a
# built-in kind that passes strict validation.
OPERATOR_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("redis.redis.opstreelabs.in/v1beta2", "RedisReplication"),
    ("kafka.strimzi.io/v1", "Kafka"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"),
}
version = kubernetes_validate.latest_version()
by = {}
for f, d in docs:
    key, name = (d.get("apiVersion"), d.get("kind")), d["metadata"]["name"]
    if key not in OPERATOR_KINDS:
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as e:
            sys.exit(f"{f}: {e.message}, and it is none of the operator resources checked here")
        except kubernetes_validate.ValidationError as e:
            sys.exit(f"{f}: {key[1]} {name}: {e.message}")
    by.setdefault(key, {})[name] = d

def get(api, kind, name):
    assert name in by.get((api, kind), {}), f"no {api} {kind} named {name}"
    return by[(api, kind)][name]

def only(api, kind):
    found = list(by.get((api, kind), {}).values())
    assert len(found) == 1, f"expected one {api} {kind}, found {len(found)}"
    return found[0], found[0]["metadata"]["name"], found[0]["spec"]

namespaces = list(by.get(("v1", "Namespace"), {}))
assert len(namespaces) == 1, f"expected one Namespace, found {namespaces}"
ns = namespaces[0]
for f, d in docs:
    if d["kind"] != "Namespace":
        assert d["metadata"].get("namespace") == ns, \
            f"{f}: {d['kind']} {d['metadata']['name']} is not in namespace {ns}"

def svc_host(url_host, service):
    return url_host in (f"{service}.{ns}.svc", f"{service}.{ns}.svc.cluster.local")

config = get("v1", "ConfigMap", "shop-config")["data"]
secrets = get("v1", "Secret", "shop-secrets")["stringData"]
hpa = lambda name: get("autoscaling/v2", "HorizontalPodAutoscaler", name)["spec"]["maxReplicas"]

# The worker: never more replicas than inventory partitions.
partitions = int(config["INVENTORY_PARTITIONS"])
worker = get("apps/v1", "Deployment", "shop-checkout-worker")["spec"]["replicas"]
assert worker <= partitions and hpa("shop-checkout-worker") <= partitions, \
    f"worker replicas {worker} / HPA max {hpa('shop-checkout-worker')} exceed INVENTORY_PARTITIONS {partitions}"
for name, d in by.get(("apps/v1", "Deployment"), {}).items():
    for c in d["spec"]["template"]["spec"]["containers"]:
        assert "livenessProbe" in c and "readinessProbe" in c, f"{name}/{c['name']}: probes"
        assert c.get("resources", {}).get("requests"), f"{name}/{c['name']}: resource requests"

# PostgreSQL (CloudNativePG): 3 instances, synchronous replication that never degrades to
# asynchronous, the shop's database and user, DATABASE_URL on the read-write Service.
_, pg_name, pgs = only("postgresql.cnpg.io/v1", "Cluster")
assert pgs.get("instances", 1) >= 3, \
    f"Cluster {pg_name}: {pgs.get('instances', 1)} instances; 3 keep a synchronous standby while one is lost"
sync = pgs.get("postgresql", {}).get("synchronous") or {}
assert sync.get("method") in ("any", "first") and 1 <= sync.get("number", 0) < pgs["instances"], \
    f"Cluster {pg_name}: no synchronous replication (spec.postgresql.synchronous method any|first, number 1..instances-1)"
assert sync.get("dataDurability", "required") == "required", \
    f"Cluster {pg_name}: dataDurability {sync['dataDurability']} lets commits go unreplicated"
db = urlsplit(secrets["DATABASE_URL"])
assert svc_host(db.hostname, f"{pg_name}-rw") and (db.port or 5432) == 5432, \
    f"DATABASE_URL's {db.hostname}:{db.port} is not {pg_name}-rw.{ns}.svc:5432, CloudNativePG's Service for the primary"
initdb = pgs.get("bootstrap", {}).get("initdb", {})
assert (initdb.get("database"), initdb.get("owner")) == (db.path.lstrip("/"), db.username), \
    f"Cluster {pg_name}: initdb makes database {initdb.get('database')} owned by {initdb.get('owner')}, DATABASE_URL wants {db.path.lstrip('/')} as {db.username}"
app = get("v1", "Secret", initdb.get("secret", {}).get("name"))
assert app.get("type") == "kubernetes.io/basic-auth" and app.get("stringData") == \
    {"username": db.username, "password": db.password}, \
    f"Secret {app['metadata']['name']}: not the basic-auth user and password of DATABASE_URL"
needed = (hpa("shop-api") * int(config["DATABASE_MAX_CONNECTIONS"])
          + hpa("shop-checkout-worker") * int(config["WORKER_DATABASE_MAX_CONNECTIONS"]) + 3)
max_connections = int(pgs.get("postgresql", {}).get("parameters", {}).get("max_connections", 100))
assert max_connections >= needed, \
    f"Cluster {pg_name}: max_connections {max_connections} < {needed}, the pools at their HPAs' most plus 3 reserved"

# Redis (the Redis operator): replicas and a Sentinel majority to promote one; REDIS_URL on the
# HAProxy that routes to whichever of the operator's pods says role:master.
_, rr_name, rrs = only("redis.redis.opstreelabs.in/v1beta2", "RedisReplication")
redis_pods = rrs.get("clusterSize", 0)
assert redis_pods >= 2, f"RedisReplication {rr_name}: clusterSize {redis_pods}; a master needs a replica to fail over to"
sentinel = rrs.get("sentinel") or {}
sentinels, quorum = sentinel.get("size", 0), int(sentinel.get("quorum", "2"))
assert sentinels >= 3 and sentinels % 2 == 1 and sentinels // 2 < quorum <= sentinels, \
    f"RedisReplication {rr_name}: Sentinel (spec.sentinel) needs an odd size >= 3 and a majority quorum, has {sentinels} and {quorum}"
if rrs.get("redisConfig", {}).get("additionalRedisConfig"):
    get("v1", "ConfigMap", rrs["redisConfig"]["additionalRedisConfig"])
redis = urlsplit(config["REDIS_URL"])
proxy_svc = get("v1", "Service", redis.hostname.split(".")[0])
assert svc_host(redis.hostname, proxy_svc["metadata"]["name"]) and \
    any(p["port"] == (redis.port or 6379) for p in proxy_svc["spec"]["ports"]), \
    f"REDIS_URL {config['REDIS_URL']} does not name Service {proxy_svc['metadata']['name']}'s port in {ns}"
proxies = [d for d in by.get(("apps/v1", "Deployment"), {}).values()
           if d["spec"]["template"]["metadata"]["labels"].items() >= proxy_svc["spec"]["selector"].items()]
assert len(proxies) == 1 and proxies[0]["spec"]["replicas"] >= 2, \
    f"Service {proxy_svc['metadata']['name']}: expected one Deployment of 2 or more HAProxy pods behind it"
haproxy_cfg = "".join(get("v1", "ConfigMap", v["configMap"]["name"])["data"].get("haproxy.cfg", "")
                      for v in proxies[0]["spec"]["template"]["spec"].get("volumes", []) if "configMap" in v)
assert "tcp-check expect string role:master" in haproxy_cfg, \
    f"{proxies[0]['metadata']['name']}: haproxy.cfg does not route by role:master"
if shutil.which("haproxy"):  # present where scripts/ha.sh has run
    with tempfile.NamedTemporaryFile("w", suffix=".cfg") as cfg:
        cfg.write(haproxy_cfg)
        cfg.flush()
        check = subprocess.run(["haproxy", "-c", "-f", cfg.name], capture_output=True, text=True)
    assert check.returncode == 0, f"haproxy.cfg: haproxy -c: {check.stdout}{check.stderr}"
servers = set(re.findall(r"^\s*server\s+\S+\s+([^\s:]+):6379\s", haproxy_cfg, re.M))
pods = {f"{rr_name}-{i}.{rr_name}-headless.{ns}.svc.cluster.local" for i in range(redis_pods)}
assert servers == pods, f"haproxy.cfg's servers {sorted(servers)} are not the Redis pods {sorted(pods)}"

# Kafka (Strimzi): 3 brokers and an odd controller quorum; topics with 3 copies, 2 in sync for a
# write; KAFKA_BROKERS on the bootstrap Service.
_, k_name, ks = only("kafka.strimzi.io/v1", "Kafka")
pools = [p["spec"] for p in by.get(("kafka.strimzi.io/v1", "KafkaNodePool"), {}).values()
         if p["metadata"].get("labels", {}).get("strimzi.io/cluster") == k_name]
brokers = sum(p["replicas"] for p in pools if "broker" in p["roles"])
controllers = sum(p["replicas"] for p in pools if "controller" in p["roles"])
assert brokers >= 3 and controllers >= 3 and controllers % 2 == 1, \
    f"Kafka {k_name}: {brokers} brokers, {controllers} controllers in its KafkaNodePools; need 3 and an odd 3 or more"
kc = ks["kafka"].get("config", {})
rf, min_isr = int(kc.get("default.replication.factor", 1)), int(kc.get("min.insync.replicas", 1))
assert 2 <= min_isr < rf <= brokers, \
    f"Kafka {k_name}: default.replication.factor {rf}, min.insync.replicas {min_isr}; need 2 <= min ISR < RF <= {brokers} brokers"
assert int(kc.get("offsets.topic.replication.factor", 1)) >= rf and \
    int(kc.get("transaction.state.log.replication.factor", 1)) >= rf and \
    int(kc.get("transaction.state.log.min.isr", 1)) >= min_isr, \
    f"Kafka {k_name}: Kafka's own topics (offsets, transaction state) are less replicated than the default"
assert str(kc.get("unclean.leader.election.enable", False)).lower() == "false", \
    f"Kafka {k_name}: unclean leader election can lose acknowledged records"
plain = {f"{k_name}-kafka-bootstrap.{ns}.svc:{l['port']}" for l in ks["kafka"]["listeners"]
         if l["type"] == "internal" and not l["tls"]}
assert config["KAFKA_BROKERS"] in plain, \
    f"KAFKA_BROKERS {config['KAFKA_BROKERS']} is not Kafka {k_name}'s plain bootstrap Service ({sorted(plain)})"
topic_rf, topic_min = int(config["TOPIC_REPLICATION_FACTOR"]), int(config.get("TOPIC_MIN_INSYNC_REPLICAS") or 1)
assert 2 <= topic_min < topic_rf <= brokers, \
    f"shop-config: TOPIC_REPLICATION_FACTOR {topic_rf}, TOPIC_MIN_INSYNC_REPLICAS {topic_min}; need 2 <= min ISR < RF <= {brokers} brokers"
print(f"k8s: {len(docs)} resources valid; workers {worker} (HPA max {hpa('shop-checkout-worker')}) <= {partitions} partitions; "
      f"PostgreSQL {pgs['instances']} instances, synchronous {sync['method']} {sync['number']}; "
      f"Redis {redis_pods} + {sentinels} Sentinels behind {proxy_svc['metadata']['name']}; "
      f"Kafka {brokers} brokers, topics RF {topic_rf} min ISR {topic_min}")

# The three-broker compose: three KRaft nodes of one cluster, Kafka's and the worker's topics with
# 3 copies and 2 in sync, the worker bootstrapping from all three.
if compose_ha:
    services = yaml.safe_load(open(compose_ha))["services"]
    nodes = {n: s["environment"] for n, s in services.items() if s.get("image", "").startswith("apache/kafka:")}
    voters = {n: {tuple(v.split(":")[0].split("@")) for v in e["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
              for n, e in nodes.items()}
    expected = {(str(e["KAFKA_NODE_ID"]), n) for n, e in nodes.items()}
    assert len(nodes) == 3 and len({e["KAFKA_NODE_ID"] for e in nodes.values()}) == 3 and \
        all(v == expected for v in voters.values()) and len({e.get("CLUSTER_ID") for e in nodes.values()}) == 1, \
        f"kafka-ha: expected 3 brokers with distinct node ids, one CLUSTER_ID and all three as voters: {voters}"
    for n, e in nodes.items():
        settings = {k: int(e.get(f"KAFKA_{k}", 1)) for k in ("DEFAULT_REPLICATION_FACTOR", "MIN_INSYNC_REPLICAS",
                    "OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "TRANSACTION_STATE_LOG_MIN_ISR")}
        assert settings == {"DEFAULT_REPLICATION_FACTOR": 3, "MIN_INSYNC_REPLICAS": 2, "OFFSETS_TOPIC_REPLICATION_FACTOR": 3,
                            "TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 3, "TRANSACTION_STATE_LOG_MIN_ISR": 2}, \
            f"kafka-ha: broker {n}: {settings}"
    w = services["worker"]["environment"]
    assert set(w["KAFKA_BROKERS"].split(",")) == {f"{n}:19092" for n in nodes} and \
        (w.get("TOPIC_REPLICATION_FACTOR"), w.get("TOPIC_MIN_INSYNC_REPLICAS")) == ("3", "2"), \
        f"kafka-ha: the worker's KAFKA_BROKERS {w['KAFKA_BROKERS']} or TOPIC_* are not the three brokers, 3 and 2"
    print(f"compose: docker-compose.kafka.yml + deploy/compose/kafka-ha.yml valid; {len(nodes)} brokers, RF 3, min ISR 2")
PY

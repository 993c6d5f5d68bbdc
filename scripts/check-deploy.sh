#!/usr/bin/env bash
# Validates the deployment artefacts with real tools: docker-compose.kafka.yml with a compose
# parser (Debian's docker-compose), deploy/k8s against the Kubernetes schemas
# (kubernetes-validate --strict), and the worker's replica bound (never more workers than
# inventory partitions).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! command -v docker-compose >/dev/null; then
  apt_install docker-compose || log "no compose parser is installable here; skipping the compose check"
fi
if command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.kafka.yml config -q
  echo "compose: docker-compose.kafka.yml is valid ($(docker-compose -f docker-compose.kafka.yml config --services | wc -l) services)"
fi

ensure_python_tools
manifests=(deploy/k8s/namespace.yaml deploy/k8s/config.yaml deploy/k8s/api.yaml deploy/k8s/worker.yaml)
kubernetes-validate --strict --quiet "${manifests[@]}"
"$PY_TOOLS/bin/python" - "${manifests[@]}" <<'PY'
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
partitions = int(kinds[("ConfigMap", "shop-config")]["data"]["INVENTORY_PARTITIONS"])
worker = kinds[("Deployment", "shop-checkout-worker")]["spec"]["replicas"]
hpa = kinds[("HorizontalPodAutoscaler", "shop-checkout-worker")]["spec"]["maxReplicas"]
assert worker <= partitions and hpa <= partitions, \
    f"worker replicas {worker} / HPA max {hpa} exceed INVENTORY_PARTITIONS {partitions}"
for (kind, name), d in kinds.items():
    if kind == "Deployment":
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{name}/{c['name']}: probes"
            assert c.get("resources", {}).get("requests"), f"{name}/{c['name']}: resource requests"
print(f"k8s: {len(docs)} resources valid; workers {worker} (HPA max {hpa}) <= {partitions} partitions")
PY

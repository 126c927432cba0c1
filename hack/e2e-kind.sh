#!/usr/bin/env bash
# End-to-end on a kind cluster, for a machine with Docker (not CI here: no Docker engine there).
#   hack/e2e-kind.sh            # create cluster, build + load image, install Prometheus-less chart, run e2e
#   KEEP=1 hack/e2e-kind.sh     # keep the cluster afterwards
# Needs: docker, kind, kubectl, helm on PATH; Debian's prometheus for the e2e's own Prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-gridshift-e2e}
IMAGE=${IMAGE:-gridshift:e2e}
KUBECONFIG_FILE=${KUBECONFIG_FILE:-$(mktemp -d)/kubeconfig}

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool not found on PATH" >&2; exit 1; }
done

cleanup() { [[ -n "${KEEP:-}" ]] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" --wait 120s
export KUBECONFIG="$KUBECONFIG_FILE"

docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

# The chart with the image just built. There is no Prometheus in this cluster: the policy below
# must therefore go Degraded with the reason, which proves the in-cluster operator runs its loop
# under the chart's least-privilege ServiceAccount.
helm upgrade --install gridshift helm/gridshift --namespace gridshift-system --create-namespace --wait \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE#*:}" --set image.pullPolicy=Never \
  --set prometheusUrl=http://prometheus.invalid:9090 --set replicaCount=2
kubectl -n gridshift-system rollout status deploy/gridshift --timeout=120s

kubectl apply -f examples/policies/site-2mw.yaml
for _ in $(seq 60); do
  reason=$(kubectl get pp site-2mw -o jsonpath='{.status.conditions[?(@.type=="Degraded")].reason}' 2>/dev/null || true)
  [[ "$reason" == Telemetry* ]] && break
  sleep 2
done
[[ "$reason" == Telemetry* ]] || { echo "e2e-kind: policy never reported its telemetry state" >&2;
  kubectl -n gridshift-system logs deploy/gridshift --tail=100 >&2; exit 1; }
echo "in-cluster operator reconciled site-2mw: Degraded/$reason (no Prometheus here, as expected)"

# The API-level suite (CRD schema, defaults, validation) against the kind API server.
python3 -m venv .venv-kind && .venv-kind/bin/pip install -q -e '.[dev]'
GRIDSHIFT_KUBECONFIG="$KUBECONFIG_FILE" .venv-kind/bin/python -m pytest tests/integration/test_powerpolicy_crd.py -q

helm uninstall gridshift --namespace gridshift-system --wait
echo "e2e-kind: passed"

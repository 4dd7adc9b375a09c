#!/usr/bin/env bash
# A Gateway API implementation on the test cluster: Traefik's Kubernetes Gateway provider, built from its pinned
# Go module (e2e/cluster/build.sh traefik), serving the Gateway API standard-channel CRDs (build.sh
# gateway-api), a GatewayClass `mcp-fleet` and a Gateway `mcp-fleet` in namespace mcp-fleet-gateway: one HTTP
# listener on port 8000 for HTTPRoutes from every namespace, behind the ClusterIP Service
# mcp-fleet-gateway/traefik (reachable from pods and, through kube-proxy, from the host of CLUSTER=local).
#
#   e2e/gateway/install.sh [install]   build what is missing (cached), push the image, apply, wait for the Gateway
#   e2e/gateway/install.sh address     print the gateway's address, IP:8000
#   e2e/gateway/install.sh uninstall   remove Traefik, the Gateway, the GatewayClass and the namespace (the CRDs stay)
#
# CLUSTER as for e2e/target.sh (local, kind or current with IMAGE_REGISTRY).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
E2E=$(cd "$HERE/.." && pwd)
# shellcheck source=SCRIPTDIR/../cluster/versions.env
source "$E2E/cluster/versions.env"
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
CLUSTER=${CLUSTER:-${MCP_FLEET_CLUSTER:-local}}  # (the suite passes the cluster it runs on)
export CLUSTER
NS=mcp-fleet-gateway
PORT=8000
log() { echo "[gateway $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

# KUBECONFIG, PATH (kubectl) and MCP_FLEET_IMAGE_REGISTRY, as the e2e suite gets them.
eval "$(bash "$E2E/target.sh" env)"
command -v kubectl >/dev/null || die "no kubectl (CLUSTER=$CLUSTER)"

# push_image: Traefik's image where the cluster's nodes get it; prints the reference pods use.
push_image() {
  local archive ref
  bash "$E2E/cluster/build.sh" traefik >&2
  archive=$(bash "$E2E/cluster/images.sh" traefik)
  if [ -n "${MCP_FLEET_IMAGE_REGISTRY:-}" ]; then
    ref=$MCP_FLEET_IMAGE_REGISTRY/mcp-fleet/traefik:$TRAEFIK_VERSION
    log "pushing $ref"
    local tls=()
    [ "$CLUSTER" = local ] && tls=(--dest-tls-verify=false)  # the local registry speaks plain HTTP
    skopeo copy -q "${tls[@]}" "docker-archive:$archive" "docker://$ref" >&2
  else  # kind: loaded into the nodes under its docker.io name
    ref=docker.io/mcp-fleet/traefik:$TRAEFIK_VERSION
    kind load image-archive "$archive" --name "${KIND_CLUSTER_NAME:-mcp-fleet}" >&2
  fi
  echo "$ref"
}

gateway_ip() {
  kubectl -n "$NS" get service traefik -o jsonpath='{.spec.clusterIP}'
}

cmd_install() {
  local started=$SECONDS image ip
  bash "$E2E/cluster/build.sh" gateway-api
  image=$(push_image)
  log "Gateway API $GATEWAY_API_VERSION CRDs (standard channel)"
  kubectl apply --server-side --force-conflicts --field-manager mcp-fleet-gateway \
    -f "$CACHE/gateway-api-$GATEWAY_API_VERSION/standard-install.yaml" >/dev/null
  kubectl wait --for condition=Established --timeout 60s \
    crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io \
    crd/httproutes.gateway.networking.k8s.io >/dev/null
  kubectl apply -f "$HERE/service.yaml" >/dev/null
  ip=$(gateway_ip)
  [ -n "$ip" ] || die "the Service $NS/traefik has no ClusterIP"
  log "Traefik $TRAEFIK_VERSION ($image) in $NS"
  sed -e "s|@TRAEFIK_IMAGE@|$image|g" -e "s|@GATEWAY_IP@|$ip|g" "$HERE/traefik.yaml" | kubectl apply -f - >/dev/null
  kubectl -n "$NS" rollout status deployment/traefik --timeout 180s >/dev/null
  kubectl apply -f "$HERE/gateway.yaml" >/dev/null
  kubectl -n "$NS" wait --for condition=Programmed --timeout 120s gateway/mcp-fleet >/dev/null \
    || { kubectl -n "$NS" get gateway mcp-fleet -o yaml >&2; die "the Gateway is not Programmed"; }
  log "Gateway $NS/mcp-fleet Programmed in $((SECONDS - started))s: http://$ip:$PORT" \
    "(pods: http://traefik.$NS.svc.cluster.local:$PORT)"
  echo "$ip:$PORT"
}

cmd_uninstall() {
  kubectl delete --ignore-not-found -f "$HERE/gateway.yaml" >/dev/null 2>&1 || true
  kubectl delete --ignore-not-found clusterrolebinding/mcp-fleet-gateway-traefik clusterrole/mcp-fleet-gateway-traefik >/dev/null
  kubectl delete --ignore-not-found namespace "$NS" --wait=true >/dev/null
  log "removed Traefik and the Gateway (the Gateway API CRDs stay)"
}

case ${1:-install} in
  install) cmd_install ;;
  address) ip=$(gateway_ip); [ -n "$ip" ] || die "not installed"; echo "$ip:$PORT" ;;
  uninstall) cmd_uninstall ;;
  *) echo "usage: CLUSTER=local|kind|current $0 [install|address|uninstall]" >&2; exit 2 ;;
esac

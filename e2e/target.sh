#!/usr/bin/env bash
# Where `make demo` and `make e2e` run, chosen by CLUSTER; the suite itself needs only a KUBECONFIG, images
# the nodes can get, and the chart values that name them (e2e/target.py reads what `env` prints).
#
#   CLUSTER=local    (default) the cluster e2e/cluster.sh builds on this machine (Linux, root), with a
#                    container registry of its own (CNCF distribution, on the node's address): images are
#                    pushed there and pulled by the node, as on any real cluster
#   CLUSTER=kind     a kind cluster (kind create cluster --config e2e/kind.yaml); images built with docker or
#                    podman from the same Dockerfiles and loaded with `kind load`
#   CLUSTER=current  the current kubectl context; images built with docker, podman or buildah and pushed to
#                    IMAGE_REGISTRY, which the cluster's nodes must be able to pull from
#
#   e2e/target.sh up | images NAME... | env | down
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=SCRIPTDIR/cluster/versions.env
source "$HERE/cluster/versions.env"
CLUSTER=${CLUSTER:-local}
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
KIND_NAME=${KIND_CLUSTER_NAME:-mcp-fleet}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -1)
LOCAL_REGISTRY=10.250.0.1:5000   # e2e/cluster.sh registry: on the node's bridge address

die() { echo "[target] error: $*" >&2; exit 1; }

registry() {
  case $CLUSTER in
    local) echo "${IMAGE_REGISTRY:-$LOCAL_REGISTRY}" ;;
    kind) echo "" ;;  # images are loaded into the nodes under their docker.io names
    current) [ -n "${IMAGE_REGISTRY:-}" ] || die "CLUSTER=current needs IMAGE_REGISTRY (a registry the nodes pull from)"
      echo "$IMAGE_REGISTRY" ;;
    *) die "CLUSTER must be local, kind or current (got $CLUSTER)" ;;
  esac
}

builder() { # the first of docker, podman, buildah that works here
  local tool
  for tool in docker podman buildah; do
    command -v "$tool" >/dev/null || continue
    if [ "$tool" = docker ] && ! docker info >/dev/null 2>&1; then continue; fi
    echo "$tool"; return
  done
  die "no image builder: install docker, podman or buildah"
}

# image_ref NAME: the reference pods use for the project's image NAME (runtime, operator, redis, own-server-time,
# oidc-provider).
image_ref() {
  local tag=$VERSION reg
  [ "$1" = redis ] && tag=7.0
  reg=$(registry)
  if [ -n "$reg" ]; then echo "$reg/mcp-fleet/$1:$tag"; else echo "docker.io/mcp-fleet/$1:$tag"; fi
}

dockerfile() {
  case $1 in
    runtime) echo images/runtime.Dockerfile ;;
    operator) echo images/operator.Dockerfile ;;
    redis) echo images/redis.Dockerfile ;;
    own-server) echo examples/own-server/Dockerfile ;;
    oidc-provider) echo e2e/oidc/Dockerfile ;;
    *) die "unknown image: $1" ;;
  esac
}

# Built with docker or podman from the Dockerfiles (kind, current): the runtime first, the own server FROM it.
build_with() { # tool name
  local tool=$1 name=$2 ref context=. args=()
  [ "$name" = own-server ] && { context=examples/own-server; args=(--build-arg "RUNTIME_IMAGE=$(image_ref runtime)"); }
  [ "$name" = oidc-provider ] && context=$(bash "$HERE/oidc/context.sh")
  ref=$(image_ref "${name/own-server/own-server-time}")
  (cd "$ROOT" && "$tool" build -f "$(dockerfile "$name")" -t "$ref" "${args[@]}" "$context")
  case $CLUSTER in
    kind) if [ "$tool" = podman ]; then
            local archive
            archive=$(mktemp --suffix .tar)
            podman save -o "$archive" "$ref"
            kind load image-archive "$archive" --name "$KIND_NAME"
            rm -f "$archive"
          else
            kind load docker-image "$ref" --name "$KIND_NAME"
          fi ;;
    current) if [ "$tool" = buildah ]; then buildah push "$ref" "docker://$ref"; else "$tool" push "$ref"; fi ;;
  esac
}

cmd_up() {
  case $CLUSTER in
    local) bash "$HERE/cluster.sh" up >/dev/null; bash "$HERE/cluster.sh" registry ;;
    kind) command -v kind >/dev/null || die "kind is not installed (https://kind.sigs.k8s.io)"
      kind get clusters 2>/dev/null | grep -qx "$KIND_NAME" \
        || kind create cluster --name "$KIND_NAME" --config "$HERE/kind.yaml" --wait 120s ;;
    current) kubectl config current-context >/dev/null || die "no current kubectl context"; registry >/dev/null ;;
  esac
}

cmd_images() {
  [ $# -gt 0 ] || set -- runtime operator redis
  case $CLUSTER in
    local) bash "$HERE/images/build.sh" --push "$(registry)" "$@" ;;
    *) local tool name
      tool=$(builder)
      # The own server is built FROM the runtime image: build that first.
      for name in "$@"; do [ "$name" = runtime ] && build_with "$tool" runtime; done
      for name in "$@"; do [ "$name" = runtime ] || build_with "$tool" "$name"; done ;;
  esac
}

cmd_env() {
  local kubeconfig path=$PATH
  case $CLUSTER in
    local) kubeconfig=${MCP_FLEET_CLUSTER_STATE:-/var/lib/mcp-fleet-cluster}/admin.kubeconfig
      path="$CACHE/k8s-$K8S_VERSION/bin:$CACHE/helm-$HELM_VERSION/bin:\$PATH" ;;
    kind) kubeconfig=$CACHE/kind-$KIND_NAME.kubeconfig
      kind get kubeconfig --name "$KIND_NAME" > "$kubeconfig"
      path="$CACHE/helm-$HELM_VERSION/bin:\$PATH" ;;
    current) kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
      path="$CACHE/helm-$HELM_VERSION/bin:\$PATH" ;;
  esac
  echo "export KUBECONFIG=$kubeconfig PATH=$path MCP_FLEET_CLUSTER=$CLUSTER MCP_FLEET_IMAGE_REGISTRY=$(registry)"
}

cmd_down() {
  case $CLUSTER in
    local) bash "$HERE/cluster.sh" down ;;
    kind) kind delete cluster --name "$KIND_NAME" ;;
    current) : ;;  # the user's cluster stays; the suite removes its namespaces
  esac
}

case ${1:-} in
  up) cmd_up ;;
  images) shift; cmd_images "$@" ;;
  env) cmd_env ;;
  down) cmd_down ;;
  ref) image_ref "$2" ;;
  *) echo "usage: CLUSTER=local|kind|current $0 up|images NAME...|env|down|ref NAME" >&2; exit 2 ;;
esac

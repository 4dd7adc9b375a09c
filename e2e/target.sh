#!/usr/bin/env bash
# Where `make demo` and `make e2e` run, chosen by CLUSTER; the suite itself needs only a KUBECONFIG, images
# the nodes can get, and the chart values that name them (e2e/target.py reads what `env` prints).
#
#   CLUSTER=local    (default) the cluster e2e/cluster.sh builds on this machine (Linux, root), with a
#                    container registry of its own (CNCF distribution, on the node's address): images are
#                    pushed there and pulled by the node, as on any real cluster
#   CLUSTER=kind     a kind cluster (kind create cluster --config e2e/kind/kind.yaml), kind built from its pinned
#                    release; images loaded with `kind load`. With docker: kind's own node image, and the images
#                    built from the Dockerfiles. With podman only (these machines): kind's podman provider, a node
#                    image built here (e2e/kind/node-image.sh), and the images e2e/images/build.sh makes
#   CLUSTER=current  the current kubectl context; images built with docker, podman or buildah and pushed to
#                    IMAGE_REGISTRY, which the cluster's nodes must be able to pull from
#
#   e2e/target.sh up | images NAME... | build [NAME...] | env | down
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

docker_works() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

# kind_setup: kind on PATH (built from its pinned release into the cache unless installed), and, without a
# working docker, kind's podman provider with limits podman can set here (a containers.conf of its own): a
# container may not raise its limits above the machine's (no CAP_SYS_RESOURCE), and podman's default is higher.
kind_setup() {
  if ! command -v kind >/dev/null; then
    bash "$HERE/cluster/build.sh" kind
    export PATH="$CACHE/kind-$KIND_VERSION/bin:$PATH"
  fi
  docker_works && return
  # podman, and the CNI plugin that gives its networks DNS (kind's nodes reach each other by name).
  if ! command -v podman >/dev/null || [ ! -x /usr/lib/cni/dnsname ]; then
    if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
      die "kind needs docker, or podman and its dnsname plugin (golang-github-containernetworking-plugin-dnsname)"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman golang-github-containernetworking-plugin-dnsname >/dev/null
    # A network kind made before the plugin was there has no DNS: kind makes it again.
    if podman network inspect kind --format '{{.DNSEnabled}}' 2>/dev/null | grep -qx false; then podman network rm kind; fi
  fi
  export KIND_EXPERIMENTAL_PROVIDER=podman CONTAINERS_CONF=$CACHE/kind-containers.conf
  # kind mounts the host's /lib/modules into each node; a machine without one (a container) gets an empty one.
  [ -d /lib/modules ] || mkdir -p /lib/modules
  # nofile: the machine's own hard limit. nproc: 1000 (the machine's own hard limit is refused here as well;
  # the limit binds no process of root's, and a node's processes are root's). runc: crun fails on this host's
  # hybrid cgroups.
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=1000:1000"]\n[engine]\nruntime = "runc"\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" > "$CONTAINERS_CONF"
}

cmd_up() {
  case $CLUSTER in
    local) bash "$HERE/cluster.sh" up >/dev/null; bash "$HERE/cluster.sh" registry ;;
    kind) kind_setup
      local image=()
      if [ -n "${KIND_NODE_IMAGE:-}" ]; then image=(--image "$KIND_NODE_IMAGE")
      elif ! docker_works; then image=(--image "$(bash "$HERE/kind/node-image.sh")"); fi
      kind get clusters 2>/dev/null | grep -qx "$KIND_NAME" \
        || kind create cluster --name "$KIND_NAME" --config "$HERE/kind/kind.yaml" "${image[@]}" --wait 180s ;;
    current) kubectl config current-context >/dev/null || die "no current kubectl context"; registry >/dev/null ;;
  esac
}

cmd_images() {
  [ $# -gt 0 ] || set -- runtime operator redis
  case $CLUSTER in
    local) bash "$HERE/images/build.sh" --push "$(registry)" "$@" ;;
    kind) kind_setup
      if docker_works; then build_all docker "$@"; return; fi
      # podman only: the images e2e/images/build.sh makes (the Dockerfiles' bases cannot be pulled here).
      bash "$HERE/images/build.sh" "$@"
      local name archive
      for name in "$@"; do
        case $name in
          redis) archive=$CACHE/images/redis-7.0.tar ;;
          own-server) archive=$CACHE/images/own-server-time-$VERSION.tar ;;
          *) archive=$CACHE/images/$name-$VERSION.tar ;;
        esac
        kind load image-archive "$archive" --name "$KIND_NAME"
      done ;;
    *) build_all "$(builder)" "$@" ;;
  esac
}

build_all() { # tool name...
  local tool=$1 name
  shift
  # The own server is built FROM the runtime image: build that first.
  for name in "$@"; do [ "$name" = runtime ] && build_with "$tool" runtime; done
  for name in "$@"; do [ "$name" = runtime ] || build_with "$tool" "$name"; done
}

# Everything `up` and `images` need, built into the cache, nothing started: .ci/run builds a cold machine's
# parts this way beside the unit tests.
cmd_build() {
  [ $# -gt 0 ] || set -- runtime operator redis own-server oidc-provider
  case $CLUSTER in
    local) bash "$HERE/cluster.sh" build ;;
    kind) kind_setup
      if docker_works; then return; fi
      [ -n "${KIND_NODE_IMAGE:-}" ] || bash "$HERE/kind/node-image.sh" >/dev/null ;;
    *) return ;;  # current: nothing of its own; its images are built as they are pushed (`images`)
  esac
  bash "$HERE/cluster/build.sh" traefik
  bash "$HERE/cluster/build.sh" gateway-api
  bash "$HERE/cluster/images.sh" traefik >/dev/null
  bash "$HERE/images/build.sh" "$@"
}

cmd_env() {
  local kubeconfig path=$PATH extra=""
  case $CLUSTER in
    local) kubeconfig=${MCP_FLEET_CLUSTER_STATE:-/var/lib/mcp-fleet-cluster}/admin.kubeconfig
      path="$CACHE/k8s-$K8S_VERSION/bin:$CACHE/helm-$HELM_VERSION/bin:\$PATH" ;;
    kind) kind_setup
      kubeconfig=$CACHE/kind-$KIND_NAME.kubeconfig
      kind get kubeconfig --name "$KIND_NAME" > "$kubeconfig"
      path="$CACHE/k8s-$K8S_VERSION/bin:$CACHE/kind-$KIND_VERSION/bin:$CACHE/helm-$HELM_VERSION/bin:\$PATH"
      # (kind's podman provider, for `kind load` and `kind get` in the shell this is evaluated in)
      [ -z "${KIND_EXPERIMENTAL_PROVIDER:-}" ] || extra=" KIND_EXPERIMENTAL_PROVIDER=podman CONTAINERS_CONF=$CONTAINERS_CONF" ;;
    current) kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
      path="$CACHE/helm-$HELM_VERSION/bin:\$PATH" ;;
  esac
  echo "export KUBECONFIG=$kubeconfig PATH=$path MCP_FLEET_CLUSTER=$CLUSTER MCP_FLEET_IMAGE_REGISTRY=$(registry)$extra"
}

cmd_down() {
  case $CLUSTER in
    local) bash "$HERE/cluster.sh" down ;;
    kind) kind_setup; kind delete cluster --name "$KIND_NAME" ;;
    current) : ;;  # the user's cluster stays; the suite removes its namespaces
  esac
}

case ${1:-} in
  up) cmd_up ;;
  images) shift; cmd_images "$@" ;;
  build) shift; cmd_build "$@" ;;
  env) cmd_env ;;
  down) cmd_down ;;
  ref) image_ref "$2" ;;
  *) echo "usage: CLUSTER=local|kind|current $0 up|images NAME...|build [NAME...]|env|down|ref NAME" >&2; exit 2 ;;
esac

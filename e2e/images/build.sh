#!/usr/bin/env bash
# Builds the project's images with no registry: a Debian base made with debootstrap, then the images from
# the same Dockerfiles users build with Docker (buildah bud, BASE_IMAGE pointing at the local base), and a
# Redis image from Debian's redis-server. Saves each as a docker-archive under the cache and, given
# --load, imports them into the local cluster's node.
#
#   e2e/images/build.sh [--load | --push REGISTRY] [base|redis|runtime|operator|own-server|oidc-provider|kind-rootfs ...]
#
# --push REGISTRY copies each image to REGISTRY/mcp-fleet/NAME:TAG (skopeo, plain HTTP allowed), where a
# cluster pulls it from; --load imports it into the local cluster's node directly.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
OUT=$CACHE/images
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_REF=localhost/mcp-fleet/python-base:$SUITE
# The managed Redis's default image, as the operator names it (one source: operator/mcp_operator/defaults.py).
REDIS_REF=$(sed -n 's/^DEFAULT_REDIS_IMAGE = "\(.*\)"$/\1/p' "$ROOT/operator/mcp_operator/defaults.py")
[ -n "$REDIS_REF" ] || { echo "no DEFAULT_REDIS_IMAGE in operator/mcp_operator/defaults.py" >&2; exit 1; }
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -1)
RUNTIME_REF=docker.io/mcp-fleet/runtime:$VERSION
OPERATOR_REF=docker.io/mcp-fleet/operator:$VERSION
OWN_SERVER_REF=docker.io/mcp-fleet/own-server-time:$VERSION
OIDC_REF=docker.io/mcp-fleet/oidc-provider:$VERSION
mkdir -p "$OUT"
log() { echo "[images $(date +%H:%M:%S)] $*" >&2; }

load=0
push=""
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --load) load=1 ;;
    --push) push=${2:?--push needs a registry}; shift ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(base redis runtime operator)

for tool in debootstrap buildah runc skopeo; do
  command -v "$tool" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done

save() { # ref archive
  rm -f "$2.tmp"
  buildah push -q "$1" "docker-archive:$2.tmp:$1" >/dev/null
  mv "$2.tmp" "$2"
}

# rootfs_image REF ARCHIVE PACKAGES...: a minimal Debian root filesystem as an image (cached by its inputs).
rootfs_image() {
  local ref=$1 archive=$2; shift 2
  local packages
  packages=$(IFS=,; echo "$*")
  local key
  key=$(echo "$SUITE $packages" | sha256sum | cut -c1-12)
  if [ -s "$archive" ] && [ -f "$archive.key" ] && [ "$(cat "$archive.key")" = "$key" ]; then
    buildah images -q "$ref" >/dev/null 2>&1 || buildah pull -q "docker-archive:$archive" >/dev/null
    return
  fi
  log "debootstrap $SUITE with $packages"
  local work
  work=$(mktemp -d)
  debootstrap --variant=minbase --include="$packages" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  chroot "$work/rootfs" apt-get clean
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/* "$work/rootfs"/usr/share/doc/* \
    "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/*
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  local ctr
  ctr=$(buildah from scratch)
  buildah add -q "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
  buildah commit --rm -q "$ctr" "$ref" >/dev/null
  rm -rf "$work"
  save "$ref" "$archive"
  echo "$key" > "$archive.key"
}

build_base() {
  rootfs_image "$BASE_REF" "$OUT/python-base-$SUITE.tar" python3 python3-venv ca-certificates
}

# kind's node base (e2e/kind/node-image.sh): the packages of kind's images/base/Dockerfile that Debian bookworm
# has, and Debian's containerd, runc and CNI plugins where kind builds those from their git repositories.
KIND_ROOTFS_REF=localhost/mcp-fleet/kind-rootfs:$SUITE
build_kind_rootfs() {
  rootfs_image "$KIND_ROOTFS_REF" "$OUT/kind-rootfs-$SUITE.tar" systemd systemd-sysv dbus conntrack iptables nftables \
    iproute2 ethtool util-linux mount kmod libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps \
    containerd runc containernetworking-plugins
}

build_redis() {
  local archive=$OUT/redis-7.0.tar
  rootfs_image localhost/mcp-fleet/redis-rootfs:$SUITE "$OUT/redis-rootfs-$SUITE.tar" redis-server ca-certificates
  if [ ! -s "$archive" ] || [ "$OUT/redis-rootfs-$SUITE.tar" -nt "$archive" ]; then
    log "building $REDIS_REF"
    local ctr
    ctr=$(buildah from localhost/mcp-fleet/redis-rootfs:$SUITE)
    buildah config --user redis --entrypoint '["redis-server"]' --cmd '["--protected-mode", "no"]' --port 6379 "$ctr"
    buildah commit --rm -q "$ctr" "$REDIS_REF" >/dev/null
    save "$REDIS_REF" "$archive"
  fi
  ARCHIVE=$archive
}

# Each build_* sets ARCHIVE to the docker-archive it made or found (stdout stays free for the tools' output).
ARCHIVE=""

build_from_dockerfile() { # ref dockerfile archive [context [build-arg...]]
  local ref=$1 dockerfile=$2 archive=$3 context=${4:-.}
  local extra=("${@:5}") build_args=(--build-arg "BASE_IMAGE=$BASE_REF")
  for arg in "${extra[@]}"; do build_args+=(--build-arg "$arg"); done
  local sum sources=(server operator)
  [ "$context" = . ] || sources+=("$context")
  # shellcheck disable=SC2046  # the file list splits on purpose
  sum=$(cd "$ROOT" && { cat "$dockerfile" pyproject.toml README.md \
    $(git ls-files "${sources[@]}" 2>/dev/null || find "${sources[@]}" -type f); echo "${extra[*]}"; } \
    | sha256sum | cut -c1-12)
  ARCHIVE=$archive
  if [ -s "$archive" ] && [ -f "$archive.key" ] && [ "$(cat "$archive.key")" = "$sum" ]; then
    return
  fi
  log "building $ref from $dockerfile"
  # pip in the build uses this machine's CA bundle (where a proxy re-signs TLS, only that bundle trusts it).
  local ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} ca_args=()
  if [ -f "$ca" ]; then
    ca_args=(--volume "$ca:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
  fi
  (cd "$ROOT" && buildah bud -q --runtime runc --network host --isolation chroot --layers=false \
    "${build_args[@]}" "${ca_args[@]}" -f "$dockerfile" -t "$ref" "$context") >/dev/null
  save "$ref" "$archive"
  echo "$sum" > "$archive.key"
}

archives=()
refs=()
for target in "${targets[@]}"; do
  case $target in
    base) build_base; continue ;;
    kind-rootfs) build_kind_rootfs; continue ;;
    redis) build_redis; refs+=("$REDIS_REF") ;;
    runtime) build_base; build_from_dockerfile "$RUNTIME_REF" images/runtime.Dockerfile "$OUT/runtime-$VERSION.tar"
      refs+=("$RUNTIME_REF") ;;
    operator) build_base; build_from_dockerfile "$OPERATOR_REF" images/operator.Dockerfile "$OUT/operator-$VERSION.tar"
      refs+=("$OPERATOR_REF") ;;
    own-server) # examples/own-server: mcp-server-time from PyPI, FROM the runtime image built first
      build_base
      build_from_dockerfile "$RUNTIME_REF" images/runtime.Dockerfile "$OUT/runtime-$VERSION.tar"
      build_from_dockerfile "$OWN_SERVER_REF" examples/own-server/Dockerfile \
        "$OUT/own-server-time-$VERSION.tar" examples/own-server "RUNTIME_IMAGE=$RUNTIME_REF"
      refs+=("$OWN_SERVER_REF") ;;
    oidc-provider) # the authorization tests' OpenID provider (e2e/oidc), on the same base
      build_base
      build_from_dockerfile "$OIDC_REF" e2e/oidc/Dockerfile "$OUT/oidc-provider-$VERSION.tar" \
        "$(bash "$ROOT/e2e/oidc/context.sh")"
      refs+=("$OIDC_REF") ;;
    *) echo "unknown image: $target" >&2; exit 2 ;;
  esac
  archives+=("$ARCHIVE")
done
for i in "${!archives[@]}"; do
  archive=${archives[$i]}
  ls -la "$archive" >&2
  if [ $load = 1 ]; then "$ROOT/e2e/cluster.sh" load-image "$archive"; fi
  if [ -n "$push" ]; then
    # docker.io/mcp-fleet/NAME:TAG -> REGISTRY/mcp-fleet/NAME:TAG
    dest="$push/${refs[$i]#docker.io/}"
    log "pushing $dest"
    skopeo copy -q --dest-tls-verify=false "docker-archive:$archive" "docker://$dest"
  fi
done

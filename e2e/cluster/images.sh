#!/usr/bin/env bash
# The cluster's own images, built locally since nothing can be pulled: pause (a static C program) and
# CoreDNS (the binary built by build.sh). Each is saved once as a docker-archive under the cache, keyed by
# version; `cluster.sh up` imports them into the node's containerd.
#
#   images.sh           pause and CoreDNS: prints their archives
#   images.sh traefik   only Traefik's (e2e/gateway/install.sh; the binary from `build.sh traefik`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
IMAGES=$CACHE/images
mkdir -p "$IMAGES"
log() { echo "[images $(date +%H:%M:%S)] $*" >&2; }

PAUSE_REF=registry.k8s.io/pause:$PAUSE_VERSION
COREDNS_REF=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
TRAEFIK_REF=docker.io/mcp-fleet/traefik:$TRAEFIK_VERSION
PAUSE_TAR=$IMAGES/pause-$PAUSE_VERSION.tar
COREDNS_TAR=$IMAGES/coredns-$COREDNS_VERSION.tar
TRAEFIK_TAR=$IMAGES/traefik-$TRAEFIK_VERSION.tar

# from_binary REF ARCHIVE BINARY ENTRYPOINT_PATH: a one-file image from a static binary.
from_binary() {
  local ref=$1 archive=$2 binary=$3 path=$4 ctr
  ctr=$(buildah from scratch)
  buildah copy "$ctr" "$binary" "$path" >/dev/null
  buildah config --entrypoint "[\"$path\"]" --user 0:0 "$ctr"
  buildah commit --rm -q "$ctr" "$ref" >/dev/null
  rm -f "$archive.tmp"
  buildah push -q "$ref" "docker-archive:$archive.tmp:$ref" >/dev/null
  mv "$archive.tmp" "$archive"
}

if [ "${1:-}" = traefik ]; then
  if [ ! -s "$TRAEFIK_TAR" ]; then
    log "building $TRAEFIK_REF"
    from_binary "$TRAEFIK_REF" "$TRAEFIK_TAR" "$CACHE/traefik-$TRAEFIK_VERSION/bin/traefik" /traefik
  fi
  echo "$TRAEFIK_TAR"
  exit 0
fi

if [ ! -s "$PAUSE_TAR" ]; then
  log "building $PAUSE_REF"
  work=$(mktemp -d)
  gcc -Os -static -o "$work/pause" "$here/pause.c"
  from_binary "$PAUSE_REF" "$PAUSE_TAR" "$work/pause" /pause
  rm -rf "$work"
fi

if [ ! -s "$COREDNS_TAR" ]; then
  log "building $COREDNS_REF"
  from_binary "$COREDNS_REF" "$COREDNS_TAR" "$CACHE/coredns-$COREDNS_VERSION/bin/coredns" /coredns
fi
echo "$PAUSE_TAR $COREDNS_TAR"

#!/usr/bin/env bash
# Builds the Kubernetes binaries, etcd, CoreDNS and helm from Go modules into a cache keyed by version
# (and, on demand, Traefik and the Gateway API CRDs for e2e/gateway).
# Idempotent: a binary already in the cache is not rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
K8S_BIN=$CACHE/k8s-$K8S_VERSION/bin
ETCD_BIN=$CACHE/etcd-$ETCD_VERSION/bin
COREDNS_BIN=$CACHE/coredns-$COREDNS_VERSION/bin
HELM_BIN=$CACHE/helm-$HELM_VERSION/bin
ACTIONLINT_BIN=$CACHE/actionlint-$ACTIONLINT_VERSION/bin
REGISTRY_BIN=$CACHE/registry-$REGISTRY_VERSION/bin
KIND_BIN=$CACHE/kind-$KIND_VERSION/bin
CRICTL_BIN=$CACHE/crictl-$CRICTL_VERSION/bin
TRAEFIK_BIN=$CACHE/traefik-$TRAEFIK_VERSION/bin
GATEWAY_API_DIR=$CACHE/gateway-api-$GATEWAY_API_VERSION
KINDCHECK_KEY=$(sha256sum < "$here/kindcheck/main.go" | cut -c1-12)
KINDCHECK_BIN=$CACHE/kindcheck-$KIND_VERSION-$KINDCHECK_KEY/bin
# The provisioner is our main.go on the pinned library: keyed by both (the directory names the version).
PROVISIONER_KEY=$(sha256sum < "$here/provisioner/main.go" | cut -c1-12)
PROVISIONER_BIN=$CACHE/provisioner-$PROVISIONER_LIB_VERSION-$PROVISIONER_KEY/bin
mkdir -p "$K8S_BIN" "$ETCD_BIN" "$COREDNS_BIN" "$HELM_BIN" "$PROVISIONER_BIN" "$ACTIONLINT_BIN" "$REGISTRY_BIN" "$KIND_BIN" "$CRICTL_BIN" "$KINDCHECK_BIN" \
  "$TRAEFIK_BIN" "$GATEWAY_API_DIR"
log() { echo "[build $(date +%H:%M:%S)] $*" >&2; }

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

# k8s_module DIR COMMAND...: a wrapper module in DIR requiring k8s.io/kubernetes (its staging modules pinned to
# the matching v0.x), with a tools.go that imports the commands, resolved once.
k8s_module() {
  local mod=$1; shift
  local minor=${K8S_VERSION#v1.}
  mkdir -p "$mod"
  {
    echo "module mcpfleet.local/k8sbuild"
    echo "go 1.24"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    for s in "${staging[@]}"; do echo "replace k8s.io/$s => k8s.io/$s v0.$minor"; done
  } > "$mod/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > "$mod/tools.go"
  cd "$mod"
  [ -f go.sum ] || { log "resolving k8s.io/kubernetes $K8S_VERSION"; go mod tidy -e >/dev/null 2>&1 || true; go mod download k8s.io/kubernetes; go mod tidy; }
}

# k8s_build COMMAND...: the commands into K8S_BIN, in the current wrapper module.
k8s_build() {
  local minor=${K8S_VERSION#v1.}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  for c in "$@"; do
    log "building $c $K8S_VERSION"
    local cgo=0; [ "$c" = kubelet ] && cgo=1
    CGO_ENABLED=$cgo go build -tags selinux,notest -ldflags "$ldflags" -o "$K8S_BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$K8S_BIN/$c.tmp" "$K8S_BIN/$c"
  done
}

build_k8s() {
  local need=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet; do
    [ -x "$K8S_BIN/$c" ] || need+=("$c")
  done
  [ ${#need[@]} -gt 0 ] || { log "kubernetes $K8S_VERSION: cached"; return; }
  k8s_module "$CACHE/k8s-$K8S_VERSION/src" kube-apiserver kube-controller-manager kube-proxy kube-scheduler kubectl kubelet
  k8s_build "${need[@]}"
}

# kubeadm, for kind's node image (e2e/kind/node-image.sh): a module of its own, so the cluster's is unchanged.
build_kubeadm() {
  [ -x "$K8S_BIN/kubeadm" ] && { log "kubeadm $K8S_VERSION: cached"; return; }
  k8s_module "$CACHE/k8s-$K8S_VERSION/kubeadm-src" kubeadm
  k8s_build kubeadm
}

build_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && { log "etcd $ETCD_VERSION: cached"; return; }
  local mod=$CACHE/etcd-$ETCD_VERSION/src
  mkdir -p "$mod" && cd "$mod"
  cat > go.mod <<GOMOD
module mcpfleet.local/etcdbuild
go 1.24
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  log "building etcd $ETCD_VERSION"
  go mod tidy
  CGO_ENABLED=0 go build -ldflags "-s -w" -o "$ETCD_BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd"
}

# build_main NAME BIN_DIR SOURCE_DIR MODULE VERSION: a main package of ours (SOURCE_DIR/main.go) on one pinned
# module, in a wrapper module next to BIN_DIR.
build_main() {
  local name=$1 bin=$2 source=$3 module=$4 version=$5
  [ -x "$bin/$name" ] && { log "$name: cached"; return; }
  local mod
  mod=$(dirname "$bin")/src
  mkdir -p "$mod" && cd "$mod"
  cp "$source/main.go" .
  printf 'module mcpfleet.local/%s\ngo 1.26\nrequire %s %s\n' "$name" "$module" "$version" > go.mod
  log "building $name ($module $version)"
  go mod tidy
  CGO_ENABLED=0 go build -ldflags "-s -w" -o "$bin/$name.tmp" .
  mv "$bin/$name.tmp" "$bin/$name"
}

build_provisioner() {
  build_main host-path-provisioner "$PROVISIONER_BIN" "$here/provisioner" \
    sigs.k8s.io/sig-storage-lib-external-provisioner/v13 "$PROVISIONER_LIB_VERSION"
}

build_kindcheck() {
  build_main kindcheck "$KINDCHECK_BIN" "$here/kindcheck" sigs.k8s.io/kind "$KIND_VERSION"
}

go_install() { # name dest module@version
  [ -x "$2/$1" ] && { log "$1: cached"; return; }
  log "installing $3"
  CGO_ENABLED=0 GOBIN=$2 go install -ldflags "-s -w" "$3"
}

# module_dir MODULE VERSION: the module's directory in GOMODCACHE (read-only), downloaded if missing.
module_dir() {
  local dir
  dir=$(go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then log "error: go mod download $1@$2 gave no directory"; exit 1; fi
  echo "$dir"
}

# Traefik's go.mod has replace directives (a local module, forks), which `go install pkg@version` refuses:
# it is built as its own main module, from a writable copy of the module's directory. The web UI's assets
# are not in the module (webui/static is empty), so the dashboard is not there; the proxy is.
#
# The Go module proxy this machine reaches refuses some modules Traefik's build needs ("403 Forbidden: This
# module version is not available"), so the copy is changed in two places before it is built:
# - github.com/containous/go-http-auth at the version v3.7 pins (a 2026 pseudo-version) is refused; the fork's
#   previous version (TRAEFIK_HTTP_AUTH, the one Traefik v2 to v3.6 used) is served and has the same API
#   (basic and digest auth middlewares);
# - the ACME DNS-01 providers (github.com/go-acme/lego/v5/providers/dns, ~220 DNS APIs) import a dozen cloud
#   SDKs that are refused (alidns, huaweicloud, tencentcloud, oraclecloud, yandexcloud, ucloud, akamai...):
#   the ACME provider is built without them (a dnsChallenge fails with an error; HTTP-01 and TLS-ALPN-01 remain).
TRAEFIK_HTTP_AUTH=github.com/containous/go-http-auth@v0.4.1-0.20200324110947-a37a7636d23e
patch_traefik() { # in the writable copy
  local ext=pkg/config/dynamic/ext
  if [ ! -f "$ext/go.mod" ]; then
    mkdir -p "$ext"
    printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' > "$ext/go.mod"
    cat > "$ext/ext.go" <<'GO'
package ext

// HTTP is a dynamic.HTTP extension.
type HTTP struct{}

// Router is a dynamic.Router extension.
type Router struct{}

// RouterIng is a RouterIng extension for ingress provider annotations.
type RouterIng struct{}

// ToRouter converts RouterIng to a Router.
func (r RouterIng) ToRouter() Router {
	return Router{}
}
GO
  fi
  go mod edit -replace "github.com/abbot/go-http-auth=$TRAEFIK_HTTP_AUTH"
  local acme=pkg/provider/acme/provider.go
  sed -i -e '\|^[[:space:]]*"github.com/go-acme/lego/v5/providers/dns"$|d' \
    -e 's|dns\.NewDNSChallengeProviderByName(p\.DNSChallenge\.Provider)$|nil, fmt.Errorf("ACME DNS challenge provider %q: not in this build (e2e/cluster/build.sh)", p.DNSChallenge.Provider)|' \
    "$acme"
  if grep -q 'lego/v5/providers/dns"\|NewDNSChallengeProviderByName' "$acme"; then
    log "error: $acme changed upstream: update patch_traefik"; exit 1
  fi
}

build_traefik() {
  [ -x "$TRAEFIK_BIN/traefik" ] && { log "traefik $TRAEFIK_VERSION: cached"; return; }
  local dir src=$CACHE/traefik-$TRAEFIK_VERSION/src
  log "downloading github.com/traefik/traefik/v3@$TRAEFIK_VERSION"
  dir=$(module_dir github.com/traefik/traefik/v3 "$TRAEFIK_VERSION")
  rm -rf "$src"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  cd "$src"
  patch_traefik
  log "building traefik $TRAEFIK_VERSION"
  # -mod=mod: go.sum gains the replacement's checksums (verified against the checksum database).
  CGO_ENABLED=0 nice -n 19 go build -mod=mod -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$TRAEFIK_BIN/traefik.tmp" ./cmd/traefik
  mv "$TRAEFIK_BIN/traefik.tmp" "$TRAEFIK_BIN/traefik"
  cd / && rm -rf "$src"  # a copy of the module cache's
}

# The Gateway API standard channel in one file, made from the Go module's config/crd/standard as the
# project's hack/build-install-yaml.sh makes the release's standard-install.yaml (CRDs and the
# safe-upgrades ValidatingAdmissionPolicy).
fetch_gateway_api() {
  local out=$GATEWAY_API_DIR/standard-install.yaml dir file
  [ -s "$out" ] && { log "gateway-api $GATEWAY_API_VERSION: cached"; return; }
  dir=$(module_dir sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")
  log "gateway-api $GATEWAY_API_VERSION: standard channel from $dir/config/crd/standard"
  {
    echo "# Gateway API $GATEWAY_API_VERSION standard channel install (sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION)"
    for file in "$dir"/config/crd/standard/gateway*.yaml; do
      echo "---"
      echo "# config/crd/standard/${file##*/}"
      cat "$file"
    done
  } > "$out.tmp"
  mv "$out.tmp" "$out"
}

what=${1:-all}
case $what in
  k8s) build_k8s ;;
  etcd) build_etcd ;;
  coredns) go_install coredns "$COREDNS_BIN" "github.com/coredns/coredns@$COREDNS_VERSION" ;;
  helm) go_install helm "$HELM_BIN" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
  provisioner) build_provisioner ;;
  registry) go_install registry "$REGISTRY_BIN" "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" ;;
  kind) go_install kind "$KIND_BIN" "sigs.k8s.io/kind@$KIND_VERSION" ;;
  kubeadm) build_kubeadm ;;
  crictl) go_install crictl "$CRICTL_BIN" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" ;;
  kindcheck) build_kindcheck ;;
  traefik) build_traefik ;;
  gateway-api) fetch_gateway_api ;;
  actionlint) go_install actionlint "$ACTIONLINT_BIN" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" ;;
  all)
    build_provisioner
    go_install registry "$REGISTRY_BIN" "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
    build_etcd
    go_install coredns "$COREDNS_BIN" "github.com/coredns/coredns@$COREDNS_VERSION"
    go_install helm "$HELM_BIN" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    build_k8s ;;
  *) echo "usage: $0 [all|k8s|etcd|coredns|helm|provisioner|registry|kind|kubeadm|crictl|kindcheck|actionlint|traefik|gateway-api]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, built from pinned upstream releases (no Docker).
#
#   e2e/cluster.sh up                 build what is missing (cached), start the cluster, print `export ...`
#   e2e/cluster.sh build              only build what is missing (packages, binaries, the cluster's images)
#   e2e/cluster.sh registry           start the cluster's container registry at 10.250.0.1:5000
#   e2e/cluster.sh down               stop everything it started and remove the cluster's state
#   e2e/cluster.sh status             what runs
#   e2e/cluster.sh load-image ARCHIVE import an image archive (docker-archive or OCI) into the node
#
# Needs root. Binaries and images are cached under ${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}; the
# cluster's state (certificates, etcd, containerd, kubelet) lives under $MCP_FLEET_CLUSTER_STATE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/cluster/versions.env
source "$HERE/cluster/versions.env"
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
STATE=${MCP_FLEET_CLUSTER_STATE:-/var/lib/mcp-fleet-cluster}
NODE_NAME=mcp-fleet-node
NODE_IP=10.250.0.1          # on a bridge with no ports: reachable from this machine and its pods only
HOST_BRIDGE=mcpf-host0
CNI_BRIDGE=mcpf-cni0
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
API_PORT=6443
REGISTRY_ADDR=$NODE_IP:5000   # the cluster's container registry (`registry`)

K8S_BIN=$CACHE/k8s-$K8S_VERSION/bin
ETCD_BIN=$CACHE/etcd-$ETCD_VERSION/bin
HELM_BIN=$CACHE/helm-$HELM_VERSION/bin
PROVISIONER_KEY=$(sha256sum < "$HERE/cluster/provisioner/main.go" | cut -c1-12)
PROVISIONER_BIN=$CACHE/provisioner-$PROVISIONER_LIB_VERSION-$PROVISIONER_KEY/bin
REGISTRY_BIN=$CACHE/registry-$REGISTRY_VERSION/bin
CTRD_SOCK=$STATE/containerd/containerd.sock
PKI=$STATE/pki
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig
APT_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack iproute2 openssl buildah skopeo curl gcc libc6-dev
  kmod procps psmisc)

log() { echo "[cluster $(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr() { command ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

require_root() { [ "$(id -u)" = 0 ] || die "run as root (the cluster needs containerd, iptables and mounts)"; }

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian starts containerd as a service on install; this cluster runs its own.
  if command -v systemctl >/dev/null && systemctl is-active -q containerd 2>/dev/null; then
    systemctl stop containerd || true
  fi
}

# Process management: every component runs in the background with a pid file and a log.
start() { # name command...
  local name=$1; shift
  if running "$name"; then return; fi
  mkdir -p "$STATE/logs" "$STATE/pids"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/$name.pid"
}
# write_if_changed FILE < content: a running kube-proxy exits when its configuration file is written to (even
# with the same content), so a second `up` must leave unchanged files alone.
write_if_changed() {
  local tmp="$1.new"
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}
running() { [ -f "$STATE/pids/$1.pid" ] && kill -0 "$(cat "$STATE/pids/$1.pid")" 2>/dev/null; }
stop() { # name
  local pidfile=$STATE/pids/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
wait_for() { # description seconds command...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up in ${seconds}s (logs: $STATE/logs)"
    sleep 0.5
  done
}

# Certificates and kubeconfigs

mkcert() { # name CN O [SANs]
  local name=$1 cn=$2 org=$3 sans=${4:-}
  [ -f "$PKI/$name.crt" ] && return
  local subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org$subj"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ext=$PKI/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } > "$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
    -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

kubeconfig() { # file user cert
  local file=$1 user=$2 cert=$3
  [ -f "$file" ] && return
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mcp-fleet
  cluster:
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
    server: https://$NODE_IP:$API_PORT
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: mcp-fleet
  context: {cluster: mcp-fleet, user: $user}
current-context: mcp-fleet
EOF
}

make_pki() {
  mkdir -p "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
      -subj "/CN=mcp-fleet-ca" 2>/dev/null
  fi
  mkcert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
  mkcert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  mkcert admin kubernetes-admin system:masters
  mkcert controller-manager system:kube-controller-manager ""
  mkcert scheduler system:kube-scheduler ""
  mkcert kube-proxy system:kube-proxy ""
  mkcert kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
  [ -f "$PKI/sa.key" ] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  kubeconfig "$KUBECONFIG_ADMIN" admin admin
  kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager controller-manager
  kubeconfig "$STATE/scheduler.kubeconfig" scheduler scheduler
  kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy kube-proxy
  kubeconfig "$STATE/kubelet.kubeconfig" kubelet kubelet
}

# Host networking

setup_network() {
  if ! ip link show "$HOST_BRIDGE" >/dev/null 2>&1; then
    ip link add "$HOST_BRIDGE" type bridge
    ip addr add "$NODE_IP/32" dev "$HOST_BRIDGE"
    ip link set "$HOST_BRIDGE" up
  fi
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "warning: bridge-nf-call-iptables not settable"
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
  write_if_changed "$STATE/cni/net.d/10-mcp-fleet.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "mcp-fleet",
  "plugins": [
    {
      "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
               "dataDir": "$STATE/cni/ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# Components

start_containerd() {
  mkdir -p "$STATE/containerd"
  write_if_changed "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:$PAUSE_VERSION"
  # Lowering an OOM score below this process's is refused on these machines (the pod sandbox asks for -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/containerd/certs.d"
EOF
  # The cluster's own registry (`registry`) speaks plain HTTP on the node's address: the node trusts it.
  mkdir -p "$STATE/containerd/certs.d/$REGISTRY_ADDR"
  write_if_changed "$STATE/containerd/certs.d/$REGISTRY_ADDR/hosts.toml" <<EOF
server = "http://$REGISTRY_ADDR"
[host."http://$REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
  pin_netns_dir
  start containerd containerd --config "$STATE/containerd/config.toml"
  wait_for containerd 30 ctr version
}

# The pods' network namespaces are files under /run/netns, each a mount. `ip netns` and podman make that directory
# a shared mount of its own on first use; one that does it while pods run (podman on this machine, for kind) mounts
# it over them, and they can then never be deleted (EBUSY). Making it first, before containerd, leaves them nothing
# to do.
pin_netns_dir() {
  mkdir -p /run/netns
  if ! mountpoint -q /run/netns; then mount --bind /run/netns /run/netns; fi
  mount --make-shared /run/netns
}

# `ip netns delete` for every pod namespace; one still there is under a mount of /run/netns over itself that came
# after it (a cluster started before pin_netns_dir): take that off and delete what it hid.
delete_pod_netns() {
  local ns tries
  for tries in 1 2 3; do
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
      ip netns delete "$ns" 2>/dev/null || true
    done
    ip netns list 2>/dev/null | grep -q '^cni-' || return 0
    mountpoint -q /run/netns || break
    log "pod network namespaces under a later mount of /run/netns ($tries): unmounting it"
    umount -l /run/netns || break
  done
  log "network namespaces left: $(ip netns list 2>/dev/null | grep '^cni-' | tr '\n' ' ')"
}

import_images() {
  local archives
  archives=$("$HERE/cluster/images.sh")
  for archive in $archives; do load_image "$archive"; done
}

load_image() {
  [ -f "$1" ] || die "no image archive at $1"
  ctr images import "$1" >/dev/null
}

start_etcd() {
  mkdir -p "$STATE/etcd"
  start etcd "$ETCD_BIN/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 4294967296 --log-level warn
  wait_for etcd 30 curl -sf http://127.0.0.1:2381/health
}

start_control_plane() {
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
    --etcd-servers http://127.0.0.1:2379 \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --allow-privileged=true --profiling=false --v=1
  wait_for kube-apiserver 90 kubectl get --raw /readyz
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$CLUSTER_CIDR" --allocate-node-cidrs=false \
    --controllers '*,bootstrapsigner,tokencleaner' --v=1
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --v=1
}

start_node() {
  mkdir -p "$STATE/kubelet"
  write_if_changed "$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTRD_SOCK
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
maxPods: 250
resolvConf: /etc/resolv.conf
rotateCertificates: false
EOF
  start kubelet "$K8S_BIN/kubelet" --config "$STATE/kubelet/config.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --root-dir "$STATE/kubelet/root" --cert-dir "$STATE/kubelet/pki" --v=1
  write_if_changed "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0}
EOF
  start kube-proxy "$K8S_BIN/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
  wait_for "the node" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
}

deploy_dns() {
  sed -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@COREDNS_IMAGE@|registry.k8s.io/coredns/coredns:$COREDNS_VERSION|g" \
    "$HERE/cluster/coredns.yaml" | kubectl apply -f - >/dev/null
  wait_for "CoreDNS" 120 kubectl -n kube-system rollout status deployment/coredns --timeout=2s
  wait_for "cluster DNS" 60 python3 "$HERE/cluster/dnsquery.py" "$DNS_IP" kubernetes.default.svc.cluster.local "$API_SERVICE_IP"
}

# Dynamic volumes: a directory under $STATE/volumes per claim, made by host-path-provisioner (built from the
# pinned sig-storage library), behind the StorageClass `standard`, the cluster's default (as on kind).
start_storage() {
  mkdir -p "$STATE/volumes"
  start provisioner "$PROVISIONER_BIN/host-path-provisioner" --kubeconfig "$KUBECONFIG_ADMIN" \
    --root "$STATE/volumes" --node "$NODE_NAME"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: mcpfleet.dev/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
}

# A container registry for the cluster (CNCF distribution, built from its pinned release): on the node's
# address, plain HTTP, its storage in $STATE. Images pushed to it (e2e/images/build.sh --push) are pulled by
# the node like from any registry (imagePullPolicy: Always works).
cmd_registry() {
  require_root
  running kube-apiserver || die "the cluster is not up: run $0 up first"
  "$HERE/cluster/build.sh" registry
  mkdir -p "$STATE/registry"
  write_if_changed "$STATE/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry/data}
  delete: {enabled: true}
http:
  addr: $REGISTRY_ADDR
EOF
  start registry "$REGISTRY_BIN/registry" serve "$STATE/registry/config.yml"
  wait_for "the registry" 30 curl -fsS "http://$REGISTRY_ADDR/v2/"
  log "registry at $REGISTRY_ADDR"
}

print_env() {
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN PATH=$K8S_BIN:$HELM_BIN:\$PATH"
}

cmd_build() {
  require_root
  install_packages
  "$HERE/cluster/build.sh" all
  "$HERE/cluster/build.sh" registry
  "$HERE/cluster/images.sh" >/dev/null
}

cmd_up() {
  require_root
  local started=$SECONDS
  cmd_build
  mkdir -p "$STATE"
  make_pki
  setup_network
  start_containerd
  import_images
  start_etcd
  start_control_plane
  start_node
  start_storage
  deploy_dns
  log "cluster up in $((SECONDS - started))s: node $NODE_NAME Ready, DNS at $DNS_IP answers"
  print_env
}

cmd_down() {
  require_root
  set +e +o pipefail  # best effort from here: clean up whatever is there
  log "stopping the node"
  stop kube-proxy
  stop kubelet
  if running containerd; then
    # Stop every pod's containers so their shims, mounts and network namespaces go.
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s KILL "$task" >/dev/null 2>&1 || true; done
    sleep 1
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  for c in registry provisioner kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do stop "$c"; done
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" 2>/dev/null || true
  # Mounts left by containers and the kubelet, deepest first.
  grep " $STATE" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  delete_pod_netns
  # Interfaces, and the iptables rules of kube-proxy, the kubelet and the CNI plugins.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^($CNI_BRIDGE|$HOST_BRIDGE)$" || true); do
    ip link delete "$link" 2>/dev/null || true
  done
  for link in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$link" 2>/dev/null || true
  done
  if [ -x "$K8S_BIN/kube-proxy" ]; then "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  for table in nat filter mangle; do
    iptables-save -t "$table" 2>/dev/null | grep -oE '^:(KUBE|CNI)-[^ ]+' | tr -d ':' | while read -r chain; do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    # The rules that jump to those chains, deleted as iptables-save wrote them (comments hold quoted quotes):
    # iptables-restore parses its own format, so nothing here re-parses it as shell.
    { echo "*$table"; iptables-save -t "$table" 2>/dev/null | grep -E '^-A .*(KUBE|CNI)-' | sed 's/^-A/-D/'
      echo COMMIT; } | iptables-restore --noflush 2>/dev/null || true
    iptables-save -t "$table" 2>/dev/null | grep -oE '^:(KUBE|CNI)-[^ ]+' | tr -d ':' | while read -r chain; do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  rm -rf "${STATE:?}"
  log "cluster down: state removed ($STATE); the build cache stays in $CACHE"
}

cmd_status() {
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy provisioner registry; do
    if running "$c"; then echo "$c: running (pid $(cat "$STATE/pids/$c.pid"))"; else echo "$c: stopped"; fi
  done
  if running kube-apiserver; then kubectl get nodes -o wide 2>/dev/null || true; fi
}

case ${1:-} in
  up) cmd_up ;;
  build) cmd_build ;;
  registry) cmd_registry ;;
  down) cmd_down ;;
  status) cmd_status ;;
  load-image) require_root; [ $# -eq 2 ] || die "usage: $0 load-image ARCHIVE"; load_image "$2"; log "imported $2" ;;
  env) print_env ;;
  *) echo "usage: $0 up|build|registry|down|status|load-image ARCHIVE|env" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# kind's node image for Kubernetes $K8S_VERSION, built on this machine with nothing pulled: kindest/base and
# kindest/node cannot be pulled here, and kind's own base Dockerfile clones and downloads its parts. It follows
# kind's recipe at $KIND_VERSION (images/base/Dockerfile, then what `kind build node-image` does in its build
# container), with every part from what this project already builds or Debian packages:
#   base      Debian bookworm from debootstrap (e2e/images/build.sh kind-rootfs) instead of debian:trixie-slim;
#             Debian's containerd, runc and CNI plugins instead of builds of their git tags; crictl from the
#             cri-tools Go module; kind's own files (entrypoint, units, containerd config) from kind's Go module;
#             not installed: the fuse-overlayfs snapshotter (rootless only), nfs-common and open-iscsi.
#   node      kubeadm, kubelet and kubectl built from the k8s.io/kubernetes module (e2e/cluster/build.sh); the
#             control-plane images made with buildah from the same builds (kube-apiserver, -controller-manager,
#             -scheduler and etcd as one-binary images, kube-proxy on the Debian base for iptables), CoreDNS and
#             pause as the local cluster's (e2e/cluster/images.sh), each tagged as `kubeadm config images list`
#             names it; imported into the node's containerd as kind does (--no-unpack, pinned).
#   CNI       e2e/kind/cni.sh (default-cni.yaml) in place of kindnetd, whose source left kind's module.
#   storage   the local cluster's host-path provisioner (default-storage.yaml) in place of rancher's
#             local-path-provisioner, which the Go module proxy here does not serve.
# Cached as a docker-archive under the cache, keyed by the versions and these files; prints the image's name.
#
#   e2e/kind/node-image.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=SCRIPTDIR/../cluster/versions.env
source "$ROOT/e2e/cluster/versions.env"
CACHE=${MCP_FLEET_CACHE:-$HOME/.cache/mcp-fleet}
OUT=$CACHE/images
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
K8S_BIN=$CACHE/k8s-$K8S_VERSION/bin
ROOTFS_REF=localhost/mcp-fleet/kind-rootfs:bookworm
BASE_REF=localhost/mcp-fleet/kind-base:$KIND_VERSION
NODE_REF=localhost/mcp-fleet/kind-node:$K8S_VERSION
CNI_REF=docker.io/mcp-fleet/kind-cni:$KIND_VERSION
PROVISIONER_REF=docker.io/mcp-fleet/host-path-provisioner:$PROVISIONER_LIB_VERSION
KEY=$(cat "$0" "$HERE/cni.sh" "$HERE/default-cni.yaml" "$HERE/default-storage.yaml" "$ROOT/e2e/cluster/versions.env" \
  | sha256sum | cut -c1-12)
NODE_TAR=$OUT/kind-node-$K8S_VERSION-$KEY.tar
BUILDER=mcp-fleet-kind-node-build
log() { echo "[kind-node $(date +%H:%M:%S)] $*" >&2; }
mkdir -p "$OUT"

if [ -s "$NODE_TAR" ]; then
  podman image exists "$NODE_REF" || podman load -q -i "$NODE_TAR" >/dev/null
  echo "$NODE_REF"
  exit 0
fi

# 1. The binaries and the images the local cluster already has.
for part in k8s etcd coredns provisioner kubeadm crictl; do "$ROOT/e2e/cluster/build.sh" "$part"; done
read -r PAUSE_TAR COREDNS_TAR < <("$ROOT/e2e/cluster/images.sh" | tail -1)
"$ROOT/e2e/images/build.sh" kind-rootfs
kind_src=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$kind_src/images/base/files" ] || { log "no images/base/files in sigs.k8s.io/kind@$KIND_VERSION"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"; podman rm -f "$BUILDER" >/dev/null 2>&1 || true' EXIT

# 2. kind's base image (images/base/Dockerfile), on the Debian root filesystem.
log "building $BASE_REF"
files=$kind_src/images/base/files
ctr=$(buildah from "$ROOTFS_REF")
run() { buildah run --isolation chroot "$ctr" -- "$@"; }
buildah copy --chmod 0755 "$ctr" "$files/usr/local/bin/" /usr/local/bin/ >/dev/null
buildah copy "$ctr" "$files/kind/" /kind/ >/dev/null
buildah copy --chmod 0755 "$ctr" "$files/kind/bin/" /kind/bin/ >/dev/null
buildah copy "$ctr" "$files/etc/crictl.yaml" /etc/ >/dev/null
for dir in containerd default sysctl.d systemd/system systemd/system/kubelet.service.d; do
  run mkdir -p "/etc/$dir"
  find "$files/etc/$dir" -maxdepth 1 -type f -exec buildah copy --chmod 0644 "$ctr" {} "/etc/$dir/" \; >/dev/null
done
buildah copy --chmod 0755 "$ctr" "$CACHE/crictl-$CRICTL_VERSION/bin/crictl" /usr/local/bin/crictl >/dev/null
# restrict_oom_score_adj, as kind's entrypoint sets it for rootless nodes: a pod sandbox asks for an OOM score of
# -998, and lowering one is refused on these machines (no CAP_SYS_RESOURCE, as for rootless).
run sh -c 'chmod 755 /kind /kind/bin \
  && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
  && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  && rm -f /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  && rm -f /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
  && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
  && ln -sf /usr/bin/containerd /usr/local/bin/containerd && ln -sf /usr/bin/ctr /usr/local/bin/ctr \
  && mkdir -p /opt/cni/bin && cp /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/ptp /usr/lib/cni/portmap /opt/cni/bin/ \
  && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
  && systemctl mask systemd-binfmt.service \
  && mkdir -p /etc/kubernetes/manifests \
  && sed -i "s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" /etc/containerd/config.toml \
  && ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
     | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json'
buildah config --cmd '[]' "$ctr"
buildah config --env container=docker --stop-signal SIGRTMIN+3 \
  --entrypoint '["/usr/local/bin/entrypoint", "/sbin/init"]' "$ctr"
buildah commit --rm -q "$ctr" "$BASE_REF" >/dev/null

# 3. The images the node starts with, as docker-archives.
image() { # REF ARCHIVE FROM FILE:PATH...: an image FROM a base (or scratch) with files added
  local ref=$1 archive=$2 from=$3; shift 3
  local c
  c=$(buildah from "$from")
  for pair in "$@"; do buildah copy --chmod 0755 "$c" "${pair%%:*}" "${pair#*:}" >/dev/null; done
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --user 0:0 "$c"
  buildah commit --rm -q "$c" "$ref" >/dev/null
  buildah push -q "$ref" "docker-archive:$archive:$ref" >/dev/null
}
archives=("$PAUSE_TAR" "$COREDNS_TAR")
declare -A ours=([pause]=registry.k8s.io/pause:$PAUSE_VERSION [coredns]=registry.k8s.io/coredns/coredns:$COREDNS_VERSION)
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "mcp-fleet.local/$c:$K8S_VERSION" "$work/$c.tar" scratch "$K8S_BIN/$c:/usr/local/bin/$c"
  archives+=("$work/$c.tar"); ours[$c]=mcp-fleet.local/$c:$K8S_VERSION
done
image "mcp-fleet.local/kube-proxy:$K8S_VERSION" "$work/kube-proxy.tar" "$ROOTFS_REF" "$K8S_BIN/kube-proxy:/usr/local/bin/kube-proxy"
archives+=("$work/kube-proxy.tar"); ours[kube-proxy]=mcp-fleet.local/kube-proxy:$K8S_VERSION
image "mcp-fleet.local/etcd:$ETCD_VERSION" "$work/etcd.tar" scratch "$CACHE/etcd-$ETCD_VERSION/bin/etcd:/usr/local/bin/etcd"
archives+=("$work/etcd.tar"); ours[etcd]=mcp-fleet.local/etcd:$ETCD_VERSION
image "$CNI_REF" "$work/cni.tar" "$ROOTFS_REF" "$HERE/cni.sh:/usr/local/bin/kind-cni.sh"
provisioner_key=$(sha256sum < "$ROOT/e2e/cluster/provisioner/main.go" | cut -c1-12)  # as e2e/cluster/build.sh keys it
provisioner=$CACHE/provisioner-$PROVISIONER_LIB_VERSION-$provisioner_key/bin/host-path-provisioner
image "$PROVISIONER_REF" "$work/provisioner.tar" scratch "$provisioner:/usr/local/bin/host-path-provisioner"
archives+=("$work/cni.tar" "$work/provisioner.tar")
# kubeadm's names for them (its pinned etcd, CoreDNS and pause tags included).
"$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" > "$work/wanted"
log "kubeadm wants: $(tr '\n' ' ' < "$work/wanted")"

# 4. The node: kind's build container (sleep), the binaries and manifests copied in, the images imported by
# the node's own containerd, then committed with kind's entrypoint back.
log "building $NODE_REF"
podman rm -f "$BUILDER" >/dev/null 2>&1 || true
podman run -d --name "$BUILDER" --privileged --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
  --entrypoint sleep "$BASE_REF" infinity >/dev/null
for b in kubeadm kubelet kubectl; do podman cp "$K8S_BIN/$b" "$BUILDER:/usr/bin/$b"; done
podman exec "$BUILDER" sh -c "chown root:root /usr/bin/kube* && chmod 755 /usr/bin/kube* \
  && echo $K8S_VERSION > /kind/version && mkdir -p /kind/manifests"
sed "s|KIND_CNI_TAG|$KIND_VERSION|" "$HERE/default-cni.yaml" > "$work/default-cni.yaml"
sed "s|PROVISIONER_TAG|$PROVISIONER_LIB_VERSION|" "$HERE/default-storage.yaml" > "$work/default-storage.yaml"
podman cp "$work/default-cni.yaml" "$BUILDER:/kind/manifests/default-cni.yaml"
podman cp "$work/default-storage.yaml" "$BUILDER:/kind/manifests/default-storage.yaml"
podman exec "$BUILDER" bash -c 'nohup containerd > /var/log/build-containerd.log 2>&1 &
  for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done; ctr version > /dev/null'
for archive in "${archives[@]}"; do
  podman exec -i "$BUILDER" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - < "$archive" >/dev/null
done
while read -r wanted; do
  name=${wanted##*/}; name=${name%%:*}
  [ -n "${ours[$name]:-}" ] || { log "no image of ours for $wanted"; exit 1; }
  [ "${ours[$name]}" = "$wanted" ] || podman exec "$BUILDER" ctr --namespace=k8s.io images tag --force "${ours[$name]}" "$wanted" >/dev/null
done < "$work/wanted"
podman exec "$BUILDER" ctr --namespace=k8s.io images list -q | sed 's/^/  /' >&2
# (sleep, the build container's first process, reaps nothing: the stopped containerd stays a zombie.)
podman exec "$BUILDER" sh -c 'pkill containerd; while ps -C containerd -o stat= | grep -qv Z; do sleep 0.2; done
  rm -f /var/log/build-containerd.log'
podman commit -q --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'CMD []' \
  "$BUILDER" "$NODE_REF" >/dev/null
rm -f "$NODE_TAR.tmp"
podman save -q -o "$NODE_TAR.tmp" "$NODE_REF"
mv "$NODE_TAR.tmp" "$NODE_TAR"
log "saved $NODE_TAR ($(du -h "$NODE_TAR" | cut -f1))"
echo "$NODE_REF"

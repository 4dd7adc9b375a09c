#!/bin/sh
# The pod network of a kind node built here (e2e/kind/node-image.sh), in place of kind's kindnetd: its image is
# not in kind's Go module and cannot be pulled. It does what kindnetd does for a kind cluster, with the CNI
# plugins kind's node image has (ptp, host-local, portmap):
#   - the node's CNI config: a point-to-point link per pod, addresses from the node's podCIDR;
#   - a route to each other node's podCIDR through that node's InternalIP (the nodes share one network);
#   - masquerade of pod traffic leaving the pod network.
# Runs as a DaemonSet on the host network (default-cni.yaml); looks at the nodes again every 10 s.
set -eu
: "${NODE_NAME:?}" "${POD_SUBNET:?}"
account=/var/run/secrets/kubernetes.io/serviceaccount
api="https://${CONTROL_PLANE_ENDPOINT:-$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT}"  # (kind adds the first)
conf=/etc/cni/net.d/10-kindnet.conflist

write_conf() { # PODCIDR
  cat > "$conf.tmp" <<CONF
{
  "cniVersion": "0.3.1",
  "name": "kindnet",
  "plugins": [
    {"type": "ptp", "ipMasq": false, "mtu": 1500,
     "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state", "routes": [{"dst": "0.0.0.0/0"}],
              "ranges": [[{"subnet": "$1"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
  if ! cmp -s "$conf.tmp" "$conf"; then
    mv "$conf.tmp" "$conf"
    echo "CNI config written for $1"
  else
    rm -f "$conf.tmp"
  fi
}

masquerade() {
  iptables -t nat -C POSTROUTING -s "$POD_SUBNET" ! -d "$POD_SUBNET" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$POD_SUBNET" ! -d "$POD_SUBNET" -j MASQUERADE
}

while true; do
  if nodes=$(curl -sf --max-time 5 --cacert "$account/ca.crt" -H "Authorization: Bearer $(cat "$account/token")" \
    "$api/api/v1/nodes"); then
    echo "$nodes" | jq -r '.items[] | [.metadata.name, (.spec.podCIDR // "-"),
      ([.status.addresses[] | select(.type == "InternalIP") | .address][0] // "-")] | @tsv' |
      while read -r name cidr address; do
        [ "$cidr" != - ] || continue
        if [ "$name" = "$NODE_NAME" ]; then
          write_conf "$cidr"
        elif [ "$address" != - ]; then
          ip route replace "$cidr" via "$address"
        fi
      done
    masquerade
  else
    echo "the API server did not answer; trying again"
  fi
  sleep 10
done

#!/bin/sh
# One of the Sentinels: it monitors the primary the other Sentinels name (this one is not up yet, so it does
# not answer itself), else the data node that says it is the primary, else the first data node (the set's
# first start). Its config is written fresh at each start, into SENTINEL_DIR.
set -eu
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

current=$(primary || true)
if [ -z "$current" ]; then
  for node in $DATA_ADDRESSES; do
    if [ "$(at "$node" INFO replication | field role)" = master ]; then
      current=$node
      break
    fi
  done
fi
[ -n "$current" ] || current=$first_data
# A Sentinel refuses to start on a name that does not resolve: wait for the primary's pod to have one.
until [ "$(at "$current" PING)" = PONG ]; do
  echo "waiting for $current"
  sleep 1
done
# After a failover every replica is pointed at the new primary at once: one at a time, a replica that stops
# during the failover (the old primary, demoted by its pre-stop) holds the others back until the failover
# timeout, and the new primary meanwhile has no replica to confirm writes (min-replicas-to-write).
syncs=0
for node in $DATA_ADDRESSES; do syncs=$((syncs + 1)); done
if [ "$syncs" -gt 1 ]; then syncs=$((syncs - 1)); fi
conf="$SENTINEL_DIR/sentinel.conf"
cat > "$conf" <<EOF
port $SENTINEL_PORT
dir $SENTINEL_DIR
protected-mode no
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $ME_HOST
requirepass $REDIS_PASSWORD
sentinel monitor $MASTER_NAME ${current%:*} ${current##*:} $SENTINEL_QUORUM
sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME $syncs
EOF
[ -z "${REDIS_BIND:-}" ] || echo "bind $REDIS_BIND" >> "$conf"
echo "monitoring $current"
exec redis-server "$conf" --sentinel

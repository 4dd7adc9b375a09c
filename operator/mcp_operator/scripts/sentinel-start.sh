#!/bin/sh
# One of the Sentinels: it monitors the primary the other Sentinels name (this one is not up yet, so it does
# not answer itself), else the data pod that says it is the primary, else data pod 0 (the set's first
# start). Its config is written fresh at each start.
set -eu
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

me="$POD_NAME.$SENTINEL_HEADLESS.$NAMESPACE.svc"
current=$(primary || true)
if [ -z "$current" ]; then
  i=0
  while [ "$i" -lt "$DATA_REPLICAS" ] && [ -z "$current" ]; do
    host="$STATEFULSET-$i.$HEADLESS.$NAMESPACE.svc"
    case "$(cli -h "$host" -p "$REDIS_PORT" INFO replication 2>/dev/null)" in
      *role:master*) current=$host ;;
    esac
    i=$((i + 1))
  done
fi
[ -n "$current" ] || current="$STATEFULSET-0.$HEADLESS.$NAMESPACE.svc"
# A Sentinel refuses to start on a name that does not resolve: wait for the primary's pod to have one.
until cli -h "$current" -p "$REDIS_PORT" PING >/dev/null 2>&1; do
  echo "waiting for $current"
  sleep 1
done
cat > /sentinel/sentinel.conf <<EOF
port $SENTINEL_PORT
dir /sentinel
protected-mode no
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $me
requirepass $REDIS_PASSWORD
sentinel monitor $MASTER_NAME $current $REDIS_PORT $SENTINEL_QUORUM
sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
EOF
echo "monitoring $current"
exec redis-server /sentinel/sentinel.conf --sentinel

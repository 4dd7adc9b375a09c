#!/bin/sh
# One Redis data pod of a highly available set: a replica of the primary the Sentinels name, or, when no
# Sentinel knows one yet (the set's first start), the primary if this is pod 0.
set -eu
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

me="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
first="$STATEFULSET-0.$HEADLESS.$NAMESPACE.svc"
set -- --port "$REDIS_PORT" --dir /data --protected-mode no --save "" --requirepass "$REDIS_PASSWORD" \
  --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$me" --appendonly "$PERSIST" --appendfsync everysec \
  --shutdown-timeout 10
current=$(primary || true)
if [ "$current" = "$me" ] && [ "$PERSIST" = no ]; then
  # The Sentinels still name this pod the primary, but it restarted empty: were it to serve as the primary,
  # its replicas would copy the empty data set. Have a replica promoted first.
  echo "restarted empty while named the primary: asking the Sentinels to promote a replica"
  first_sentinel failover "$MASTER_NAME" || true
  wait_primary_not "$me" 30
  current=$(primary || true)
fi
if [ -n "$current" ] && [ "$current" != "$me" ]; then
  echo "starting as a replica of $current"
  exec redis-server "$@" --replicaof "$current" "$REDIS_PORT"
elif [ -n "$current" ] || [ "$me" = "$first" ]; then
  echo "starting as the primary"
  exec redis-server "$@"
fi
echo "no Sentinel answers yet: starting as a replica of $first"
exec redis-server "$@" --replicaof "$first" "$REDIS_PORT"

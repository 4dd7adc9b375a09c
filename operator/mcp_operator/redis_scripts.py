"""The shell scripts of a highly available managed Redis, mounted from a ConfigMap into the Redis image.

They run under /bin/sh of the Redis image (Debian's redis-server and redis-cli). Addresses are the pods'
stable DNS names under the headless Services, so a pod that comes back keeps its name and the Sentinels
keep knowing it (`resolve-hostnames`, `announce-hostnames`).
"""

from __future__ import annotations

SENTINEL_PORT = 26379
MASTER_NAME = "mcp"
DOWN_AFTER_MS = 5000
FAILOVER_TIMEOUT_MS = 20000

_COMMON = r"""
# redis-cli has no connect timeout: a pod's address that no longer answers would hang it for minutes.
cli() { REDISCLI_AUTH="$REDIS_PASSWORD" timeout 3 redis-cli --no-auth-warning "$@"; }
sentinel_says() { # the primary's host as a Sentinel names it, or nothing
  cli -h "$1" -p 26379 SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1
}
any_sentinel_says() {
  i=0
  while [ "$i" -lt 3 ]; do
    answer=$(sentinel_says "$SENTINEL-$i.$SENTINEL_HEADLESS.$NAMESPACE.svc")
    if [ -n "$answer" ]; then echo "$answer"; return 0; fi
    i=$((i + 1))
  done
  return 1
}
"""

REDIS_START = (
    r"""#!/bin/sh
# One Redis data pod of a highly available set: a replica of the primary the Sentinels name, or, when no
# Sentinel knows one yet (the set's first start), the primary if this is pod 0.
set -eu
"""
    + _COMMON
    + r"""
me="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
first="$STATEFULSET-0.$HEADLESS.$NAMESPACE.svc"
set -- --port 6379 --dir /data --protected-mode no --save "" --requirepass "$REDIS_PASSWORD" \
  --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$me" --appendonly "$PERSIST" --appendfsync everysec \
  --shutdown-timeout 10
primary=$(any_sentinel_says || true)
if [ "$primary" = "$me" ] && [ "$PERSIST" = no ]; then
  # The Sentinels still name this pod the primary, but it restarted empty: were it to serve as the primary,
  # its replicas would copy the empty data set. Have a replica promoted first.
  echo "restarted empty while named the primary: asking the Sentinels to promote a replica"
  cli -h "$SENTINEL-0.$SENTINEL_HEADLESS.$NAMESPACE.svc" -p 26379 SENTINEL failover "$MASTER_NAME" || true
  tries=0
  while [ "$tries" -lt 30 ] && [ "$primary" = "$me" ]; do
    sleep 1
    primary=$(any_sentinel_says || true)
    tries=$((tries + 1))
  done
fi
if [ -n "$primary" ] && [ "$primary" != "$me" ]; then
  echo "starting as a replica of $primary"
  exec redis-server "$@" --replicaof "$primary" 6379
elif [ -n "$primary" ] || [ "$me" = "$first" ]; then
  echo "starting as the primary"
  exec redis-server "$@"
fi
echo "no Sentinel answers yet: starting as a replica of $first"
exec redis-server "$@" --replicaof "$first" 6379
"""
)

REDIS_READY = r"""#!/bin/sh
# Ready: the primary answers, or a replica answers and its link to the primary is up.
set -eu
info=$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning -p 6379 INFO replication)
case "$info" in
  *role:master*) exit 0 ;;
  *master_link_status:up*) exit 0 ;;
esac
exit 1
"""

REDIS_PRE_STOP = (
    r"""#!/bin/sh
# Before a data pod stops (a rolling update, a drain): if it is the primary, have the Sentinels promote a
# replica first, so writes pause for a moment instead of failing until the Sentinels notice the primary gone.
set -u
"""
    + _COMMON
    + r"""
me="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
[ "$(any_sentinel_says || true)" = "$me" ] || exit 0
i=0
while [ "$i" -lt 3 ]; do
  cli -h "$SENTINEL-$i.$SENTINEL_HEADLESS.$NAMESPACE.svc" -p 26379 SENTINEL failover "$MASTER_NAME" && break
  i=$((i + 1))
done
tries=0
while [ "$tries" -lt 20 ] && [ "$(any_sentinel_says || true)" = "$me" ]; do
  sleep 1
  tries=$((tries + 1))
done
# Let the clients' connections move before this one stops answering.
sleep 2
"""
)

SENTINEL_START = (
    r"""#!/bin/sh
# One of three Sentinels: it monitors the primary another Sentinel names, else the data pod that says it is
# the primary, else data pod 0 (the set's first start). Its config is written fresh at each start.
set -eu
"""
    + _COMMON
    + r"""
me="$POD_NAME.$SENTINEL_HEADLESS.$NAMESPACE.svc"
primary=""
i=0
while [ "$i" -lt 3 ] && [ -z "$primary" ]; do
  peer="$SENTINEL-$i.$SENTINEL_HEADLESS.$NAMESPACE.svc"
  [ "$peer" = "$me" ] || primary=$(sentinel_says "$peer")
  i=$((i + 1))
done
if [ -z "$primary" ]; then
  i=0
  while [ "$i" -lt "$DATA_REPLICAS" ] && [ -z "$primary" ]; do
    host="$STATEFULSET-$i.$HEADLESS.$NAMESPACE.svc"
    case "$(cli -h "$host" -p 6379 INFO replication 2>/dev/null)" in
      *role:master*) primary=$host ;;
    esac
    i=$((i + 1))
  done
fi
[ -n "$primary" ] || primary="$STATEFULSET-0.$HEADLESS.$NAMESPACE.svc"
# A Sentinel refuses to start on a name that does not resolve: wait for the primary's pod to have one.
until cli -h "$primary" -p 6379 PING >/dev/null 2>&1; do
  echo "waiting for $primary"
  sleep 1
done
cat > /sentinel/sentinel.conf <<EOF
port 26379
dir /sentinel
protected-mode no
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $me
requirepass $REDIS_PASSWORD
sentinel monitor $MASTER_NAME $primary 6379 2
sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
EOF
echo "monitoring $primary"
exec redis-server /sentinel/sentinel.conf --sentinel
"""
)

SENTINEL_READY = r"""#!/bin/sh
# Ready: the Sentinel names a primary.
set -eu
[ -n "$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning -p 26379 \
  SENTINEL get-master-addr-by-name "$MASTER_NAME" | head -n 1)" ]
"""

SCRIPTS = {
    "redis-start.sh": REDIS_START,
    "redis-ready.sh": REDIS_READY,
    "redis-pre-stop.sh": REDIS_PRE_STOP,
    "sentinel-start.sh": SENTINEL_START,
    "sentinel-ready.sh": SENTINEL_READY,
}

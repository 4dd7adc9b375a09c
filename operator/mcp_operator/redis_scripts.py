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
sentinel_host() { echo "$SENTINEL-$1.$SENTINEL_HEADLESS.$NAMESPACE.svc"; }
first_sentinel() { # SENTINEL ARGS... on the first Sentinel that answers; prints its answer
  i=0
  while [ "$i" -lt 3 ]; do
    answer=$(cli -h "$(sentinel_host "$i")" -p 26379 SENTINEL "$@" 2>/dev/null || true)
    if [ -n "$answer" ]; then echo "$answer"; return 0; fi
    i=$((i + 1))
  done
  return 1
}
primary() { # the primary's host as the first Sentinel that answers names it, or nothing
  first_sentinel get-master-addr-by-name "$MASTER_NAME" | head -n 1
}
wait_primary_not() { # HOST SECONDS: until the Sentinels name another primary, or the time is up
  tries=0
  while [ "$tries" -lt "$2" ] && [ "$(primary)" = "$1" ]; do
    sleep 1
    tries=$((tries + 1))
  done
}
"""


def _with_helpers(head: str, body: str) -> str:
    """A script: its #! line, comment and `set` line, the Sentinel helpers, then its body."""
    return head + _COMMON + body


REDIS_START = _with_helpers(
    r"""#!/bin/sh
# One Redis data pod of a highly available set: a replica of the primary the Sentinels name, or, when no
# Sentinel knows one yet (the set's first start), the primary if this is pod 0.
set -eu
""",
    r"""
me="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
first="$STATEFULSET-0.$HEADLESS.$NAMESPACE.svc"
set -- --port 6379 --dir /data --protected-mode no --save "" --requirepass "$REDIS_PASSWORD" \
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
  exec redis-server "$@" --replicaof "$current" 6379
elif [ -n "$current" ] || [ "$me" = "$first" ]; then
  echo "starting as the primary"
  exec redis-server "$@"
fi
echo "no Sentinel answers yet: starting as a replica of $first"
exec redis-server "$@" --replicaof "$first" 6379
""",
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

REDIS_PRE_STOP = _with_helpers(
    r"""#!/bin/sh
# Before a data pod stops (a rolling update, a drain): if it is the primary, have the Sentinels promote a
# replica first, so writes pause for a moment instead of failing until the Sentinels notice the primary gone.
set -u
""",
    r"""
me="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
[ "$(primary || true)" = "$me" ] || exit 0
first_sentinel failover "$MASTER_NAME" || true
wait_primary_not "$me" 20
# Let the clients' connections move before this one stops answering.
sleep 2
""",
)

SENTINEL_START = _with_helpers(
    r"""#!/bin/sh
# One of three Sentinels: it monitors the primary the other Sentinels name (this one is not up yet, so it
# does not answer itself), else the data pod that says it is the primary, else data pod 0 (the set's first
# start). Its config is written fresh at each start.
set -eu
""",
    r"""
me="$POD_NAME.$SENTINEL_HEADLESS.$NAMESPACE.svc"
current=$(primary || true)
if [ -z "$current" ]; then
  i=0
  while [ "$i" -lt "$DATA_REPLICAS" ] && [ -z "$current" ]; do
    host="$STATEFULSET-$i.$HEADLESS.$NAMESPACE.svc"
    case "$(cli -h "$host" -p 6379 INFO replication 2>/dev/null)" in
      *role:master*) current=$host ;;
    esac
    i=$((i + 1))
  done
fi
[ -n "$current" ] || current="$STATEFULSET-0.$HEADLESS.$NAMESPACE.svc"
# A Sentinel refuses to start on a name that does not resolve: wait for the primary's pod to have one.
until cli -h "$current" -p 6379 PING >/dev/null 2>&1; do
  echo "waiting for $current"
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
sentinel monitor $MASTER_NAME $current 6379 2
sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
EOF
echo "monitoring $current"
exec redis-server /sentinel/sentinel.conf --sentinel
""",
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

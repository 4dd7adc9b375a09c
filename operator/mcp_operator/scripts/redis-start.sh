#!/bin/sh
# One data node of a highly available Redis: a replica of the primary the Sentinels name, or, when no Sentinel
# knows one yet (the set's first start), the primary if this is the first data node.
#
# Never two primaries: when the Sentinels still name this node the primary (its process restarted, or a
# force-deleted pod's replacement came up while the old container may still run), it does not take writes.
# It waits until no other data node has a live replication link to its address (which would mean the old
# process still serves as this node), has the Sentinels promote a replica, and starts as that replica's
# replica. Only when no replica can be promoted (the whole set restarting) does it start as the primary, with
# its data (or empty, without persistence). Were it to start as the primary at once, clients that asked the
# Sentinels meanwhile would write to it, and the Sentinels would demote it seconds later, discarding them.
set -eu
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

linked_to_me() { # whether another data node reports a live replication link to this node's address
  for node in $DATA_ADDRESSES; do
    [ "$node" != "$me" ] || continue
    info=$(at "$node" INFO replication)
    if [ "$(echo "$info" | field master_host):$(echo "$info" | field master_port)" = "$me" ] &&
      [ "$(echo "$info" | field master_link_status)" = up ]; then
      echo "$node still replicates from a process serving as $me"
      return 0
    fi
  done
  return 1
}
unlinked() { ! linked_to_me >/dev/null; }

# A primary cut off from its replicas refuses writes after MIN_REPLICAS_MAX_LAG seconds, and a primary with
# no replica at all (restarted alone) refuses them from the start.
set -- --port "$REDIS_PORT" --dir "$DATA_DIR" --protected-mode no --save "" --requirepass "$REDIS_PASSWORD" \
  --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$ME_HOST" --appendonly "$PERSIST" --appendfsync everysec \
  --shutdown-timeout "$SHUTDOWN_TIMEOUT_SECONDS" --min-replicas-to-write "$MIN_REPLICAS_TO_WRITE" \
  --min-replicas-max-lag "$MIN_REPLICAS_MAX_LAG"
[ -z "${REDIS_BIND:-}" ] || set -- "$@" --bind "$REDIS_BIND"

current=$(primary || true)
if [ "$current" = "$me" ]; then
  echo "the Sentinels name this node ($me) the primary: having a replica promoted before taking writes"
  if ! within "$STALE_PRIMARY_SECONDS" unlinked; then
    linked_to_me || true
    echo "the other process still serves after ${STALE_PRIMARY_SECONDS}s: failing over anyway"
  fi
  if ask_failover && ! within "$START_FAILOVER_SECONDS" another_primary "$me"; then
    echo "the Sentinels named no other primary within ${START_FAILOVER_SECONDS}s"
  fi
  current=$(primary || true)
fi
if [ -n "$current" ] && [ "$current" != "$me" ]; then
  echo "starting as a replica of $current"
  exec redis-server "$@" --replicaof "${current%:*}" "${current##*:}"
elif [ -n "$current" ] || [ "$me" = "$first_data" ]; then
  echo "starting as the primary"
  exec redis-server "$@"
fi
echo "no Sentinel answers yet: starting as a replica of $first_data"
exec redis-server "$@" --replicaof "${first_data%:*}" "${first_data##*:}"

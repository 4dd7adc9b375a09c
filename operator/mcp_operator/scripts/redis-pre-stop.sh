#!/bin/sh
# Before a data node stops (a rolling update, a drain, a deleted pod): if it is the primary, hand the role to a
# replica without losing a write it acknowledged.
#  1. Pause writes here (CLIENT PAUSE WRITE; reads go on). The pause ends by itself after SWITCHOVER_PAUSE_MS,
#     longer than the steps below may take, so a script killed half way never leaves the node paused.
#  2. Wait until every online replica holds this node's replication offset as of the pause (it acknowledged
#     it, or says it applied it): every write acknowledged here is then on whichever replica the Sentinels
#     promote (they pick the highest offset among replicas of equal replica-priority; the data nodes all keep
#     the default priority).
#  3. Have the Sentinels fail over, and wait until they name another primary.
#  4. Become a replica of it at once (the Sentinels would tell this node only seconds later, and it would
#     take writes meanwhile), then end the pause: the writes it held fail with READONLY, and the clients
#     reconnect to the new primary.
# Every step is bounded in time; one that runs out ends the pause and leaves the rest to the Sentinels.
set -u
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

caught_up() { # OFFSET: whether this node has an online replica, and every online one holds OFFSET
  online=$(here INFO replication | grep '^slave[0-9]*:.*state=online')
  [ -n "$online" ] || return 1
  behind=$(echo "$online" | while read -r line; do
    acked=$(echo "$line" | sed -n 's/.*,offset=\([0-9]*\).*/\1/p')
    [ "${acked:-0}" -lt "$1" ] || continue
    # Not acknowledged yet (a replica acknowledges once a second): what the replica itself says it applied.
    replica=$(echo "$line" | sed -n 's/.*ip=\([^,]*\),port=\([0-9]*\),.*/\1:\2/p')
    applied=$(at "$replica" INFO replication | field slave_repl_offset)
    [ "${applied:-0}" -ge "$1" ] || echo "$replica"
  done)
  [ -z "$behind" ]
}
is_replica() { [ "$(here INFO replication | field role)" = slave ]; }

[ "$(primary || true)" = "$me" ] || exit 0
echo "this node ($me) is the primary: handing over to a replica"
if [ "$(here CLIENT PAUSE "$SWITCHOVER_PAUSE_MS" WRITE)" != OK ]; then
  echo "this node does not answer: leaving the failover to the Sentinels"
  exit 0
fi
offset=$(here INFO replication | field master_repl_offset)
echo "writes paused at offset $offset"
if within "$SWITCHOVER_CATCH_UP_SECONDS" caught_up "${offset:-0}"; then
  echo "every online replica holds offset $offset"
else
  echo "not every replica holds offset $offset after ${SWITCHOVER_CATCH_UP_SECONDS}s: failing over anyway"
fi
# another_primary leaves the primary it saw in $named.
if ask_failover && within "$SWITCHOVER_FAILOVER_SECONDS" another_primary "$me"; then
  echo "the Sentinels name $named the primary"
  here REPLICAOF "${named%:*}" "${named##*:}" >/dev/null
  if within "$SWITCHOVER_DEMOTE_SECONDS" is_replica; then
    echo "this node is a replica of $named"
  else
    echo "this node did not become a replica within ${SWITCHOVER_DEMOTE_SECONDS}s"
  fi
else
  echo "no other primary within ${SWITCHOVER_FAILOVER_SECONDS}s: the Sentinels fail over once this node stops"
fi
here CLIENT UNPAUSE >/dev/null
echo "writes unpaused"
# Let the clients' connections move before this node stops answering.
sleep 2

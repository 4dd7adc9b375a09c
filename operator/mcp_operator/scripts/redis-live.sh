#!/bin/sh
# Alive: this node answers, and its role agrees with the primary the Sentinels name. The kubelet restarts a
# node whose role disagrees for the probe's whole failure window (a minute; a failover settles in seconds),
# and redis-start.sh then starts it as a replica of that primary. What disagrees:
#   a node that says it is a primary while the Sentinels name another: it started while no Sentinel answered
#   (the whole set restarting at once) and the Sentinels, started meanwhile, picked another node. No client
#   writes to it (clients ask the Sentinels), but a replica attached to it is lost to the Sentinels' primary,
#   which may be left with none and refuse every write (min-replicas-to-write);
#   a replica of a node other than that primary: such a replica is not the Sentinels' to promote or
#   reconfigure.
# When no Sentinel answers, or this node is the one they name, there is nothing to compare with: alive.
set -u
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

info=$(here INFO replication)
[ -n "$info" ] || exit 1 # this node does not answer
named=$(primary || true)
[ -n "$named" ] && [ "$named" != "$me" ] || exit 0
role=$(echo "$info" | field role)
if [ "$role" = master ]; then
  echo "this node is a primary, but the Sentinels name $named"
  exit 1
fi
following="$(echo "$info" | field master_host):$(echo "$info" | field master_port)"
if [ "$following" != "$named" ]; then
  echo "this node replicates from $following, but the Sentinels name $named"
  exit 1
fi

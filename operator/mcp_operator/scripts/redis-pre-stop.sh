#!/bin/sh
# Before a data pod stops (a rolling update, a drain): if it is the primary, have the Sentinels promote a
# replica first, so writes pause for a moment instead of failing until the Sentinels notice the primary gone.
set -u
# shellcheck source=redis-common.sh
. "$(dirname "$0")/redis-common.sh"

me="$POD_NAME.$HEADLESS.$NAMESPACE.svc"
[ "$(primary || true)" = "$me" ] || exit 0
first_sentinel failover "$MASTER_NAME" || true
wait_primary_not "$me" 20
# Let the clients' connections move before this one stops answering.
sleep 2

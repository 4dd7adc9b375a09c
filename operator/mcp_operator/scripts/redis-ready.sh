#!/bin/sh
# Ready: the primary answers, or a replica answers and its link to the primary is up.
set -eu
info=$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning -p "$REDIS_PORT" INFO replication)
case "$info" in
  *role:master*) exit 0 ;;
  *master_link_status:up*) exit 0 ;;
esac
exit 1

#!/bin/sh
# Ready: the Sentinel names a primary.
set -eu
[ -n "$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning -p "$SENTINEL_PORT" \
  SENTINEL get-master-addr-by-name "$MASTER_NAME" | head -n 1)" ]

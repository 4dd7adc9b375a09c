# shellcheck shell=sh
# Helpers the start and pre-stop scripts of a highly available Redis source: asking the Sentinels.
# The operator sets REDIS_PASSWORD, NAMESPACE, SENTINEL, SENTINEL_HEADLESS, SENTINELS, SENTINEL_PORT and
# MASTER_NAME in the container's environment.

# redis-cli has no connect timeout: a pod's address that no longer answers would hang it for minutes.
cli() { REDISCLI_AUTH="$REDIS_PASSWORD" timeout 3 redis-cli --no-auth-warning "$@"; }
sentinel_host() { echo "$SENTINEL-$1.$SENTINEL_HEADLESS.$NAMESPACE.svc"; }
first_sentinel() { # SENTINEL ARGS... on the first Sentinel that answers; prints its answer
  i=0
  while [ "$i" -lt "$SENTINELS" ]; do
    answer=$(cli -h "$(sentinel_host "$i")" -p "$SENTINEL_PORT" SENTINEL "$@" 2>/dev/null || true)
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

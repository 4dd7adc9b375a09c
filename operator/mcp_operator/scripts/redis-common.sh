# shellcheck shell=sh
# Helpers the scripts of a highly available Redis source: talking to a node, asking the Sentinels, waiting.
# Everything comes from the environment, which the operator renders (redis_ha.py) and the loopback tests set
# the same way (every address 127.0.0.1 with its own port), so both run these very scripts:
#   REDIS_PASSWORD       the password of every data node and Sentinel
#   ME_HOST              this node's address as the others reach it (on the cluster its pod's DNS name under
#                        the headless Service); a node is known by ME_HOST:REDIS_PORT (or :SENTINEL_PORT)
#   REDIS_PORT           the data nodes' port; SENTINEL_PORT the Sentinels'
#   DATA_ADDRESSES       host:port of every data node, space-separated; the first is the set's first primary
#   SENTINEL_ADDRESSES   host:port of every Sentinel, space-separated
#   MASTER_NAME          the name the Sentinels monitor the primary under
#   REDIS_BIND           optional: the one address the node listens on (the loopback tests: 127.0.0.1)
# Only coreutils, sed, grep and redis-cli: the Redis image is a minimal Debian with redis-server.

# redis-cli has no connect timeout: a pod's address that no longer answers would hang it for minutes.
cli() { REDISCLI_AUTH="$REDIS_PASSWORD" timeout 3 redis-cli --no-auth-warning "$@"; }
at() { # HOST:PORT COMMAND...: the answer of the node at HOST:PORT, without carriage returns (empty if none)
  where=$1
  shift
  cli -h "${where%:*}" -p "${where##*:}" "$@" 2>/dev/null | tr -d '\r'
}
here() { at "${REDIS_BIND:-127.0.0.1}:$REDIS_PORT" "$@"; } # COMMAND...: this data node's answer
field() { sed -n "s/^$1://p" | head -n 1; }                  # NAME: its value in an INFO answer on stdin
# shellcheck disable=SC2034  # both used by the scripts that source this file
{
  me="$ME_HOST:$REDIS_PORT"          # this data node
  first_data="${DATA_ADDRESSES%% *}" # the set's first primary
}

first_sentinel() { # ARGS...: SENTINEL ARGS on the first Sentinel that answers; prints its answer
  for sentinel in $SENTINEL_ADDRESSES; do
    answer=$(at "$sentinel" SENTINEL "$@")
    if [ -n "$answer" ]; then
      echo "$answer"
      return 0
    fi
  done
  return 1
}
primary() { # host:port of the primary, as the first Sentinel that knows one names it; nothing if none does
  for sentinel in $SENTINEL_ADDRESSES; do
    answer=$(at "$sentinel" SENTINEL get-master-addr-by-name "$MASTER_NAME")
    host=$(echo "$answer" | sed -n 1p)
    port=$(echo "$answer" | sed -n 2p)
    case "$port" in
      '' | *[!0-9]*) ;; # no answer, an error, or no primary known
      *)
        echo "$host:$port"
        return 0
        ;;
    esac
  done
  return 1
}
another_primary() { # ADDRESS: whether the Sentinels name a primary, and not ADDRESS
  named=$(primary || true)
  [ -n "$named" ] && [ "$named" != "$1" ]
}
within() { # SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds (then 0) or SECONDS have passed (1)
  deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
ask_failover() { # have the Sentinels promote a replica: 0 when one took it on (or one is under way), else 1
  answer=$(first_sentinel failover "$MASTER_NAME" || echo "no Sentinel answers")
  case "$answer" in
    OK | INPROG*) return 0 ;;
  esac
  echo "the Sentinels refused the failover: $answer"
  return 1
}

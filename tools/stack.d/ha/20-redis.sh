# shellcheck shell=bash
# The --ha stack's Redis (sourced by tools/stack): a master and a replica, watched by three
# Sentinels (quorum 2) that promote the replica when the master is down for 2 s. Everything
# requires a password (requirepass + masterauth on the servers, requirepass + auth-pass on the
# Sentinels), generated once into $HA_DIR/redis/password. Clients ask the Sentinels for the master
# of `kurt` (platform/redis, --redis_sentinels).
#
#   redis-1     127.0.0.1:25100   the master at first
#   redis-2     127.0.0.1:25101   its replica at first
#   sentinel-1  127.0.0.1:25110   sentinel-2 :25111   sentinel-3 :25112
#
# Roles move with failovers: a server is (re)started as a replica of whichever server the Sentinels
# name as master (tools/stack start --ha redis-1 after a failover makes it rejoin as a replica).
# The configuration files are rendered once; Redis and Sentinel rewrite them afterwards.

HA_COMPONENTS+=(redis)

REDIS_HA_DIR=$HA_DIR/redis
REDIS_HA_MASTER_NAME=kurt
REDIS_HA_SERVERS=(redis-1 redis-2)
REDIS_HA_SENTINELS=(sentinel-1 sentinel-2 sentinel-3)

redis_ha_port() {
  case $1 in
    redis-1) echo 25100 ;;
    redis-2) echo 25101 ;;
    sentinel-1) echo 25110 ;;
    sentinel-2) echo 25111 ;;
    sentinel-3) echo 25112 ;;
    *) return 1 ;;
  esac
}

redis_ha_name_of_port() {
  local n
  for n in "${REDIS_HA_SERVERS[@]}" "${REDIS_HA_SENTINELS[@]}"; do
    [ "$(redis_ha_port "$n")" = "$1" ] && echo "$n" && return 0
  done
  return 1
}

redis_ha_password() { cat "$REDIS_HA_DIR/password"; }

# redis_ha_cli PORT ARGS...: redis-cli with the password (from the environment, not the command
# line, where ps would show it).
redis_ha_cli() {
  local port=$1
  shift
  REDISCLI_AUTH=$(redis_ha_password) timeout 3 redis-cli --no-auth-warning -h 127.0.0.1 \
    -p "$port" "$@" 2>/dev/null
}

# redis_ha_pid NAME: the pid of NAME's process, if it runs and is ours.
redis_ha_pid() {
  local pid
  pid=$(head -n1 "$HA_RUN_DIR/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" && cmdline_has "$pid" "127.0.0.1:$(redis_ha_port "$1")" ||
    return 1
  echo "$pid"
}

redis_ha_answers() { [ "$(redis_ha_cli "$(redis_ha_port "$1")" ping)" = PONG ]; }

# redis_ha_role NAME: master, slave or nothing.
redis_ha_role() { redis_ha_cli "$(redis_ha_port "$1")" role | head -n1; }

# redis_ha_master_from_sentinels: the master's port, from the first running Sentinel that knows.
redis_ha_master_from_sentinels() {
  local s addr
  for s in "${REDIS_HA_SENTINELS[@]}"; do
    redis_ha_pid "$s" >/dev/null || continue
    mapfile -t addr < <(redis_ha_cli "$(redis_ha_port "$s")" \
      sentinel get-master-addr-by-name "$REDIS_HA_MASTER_NAME")
    if [[ ${addr[1]:-} =~ ^[0-9]+$ ]]; then
      echo "${addr[1]}"
      return 0
    fi
  done
  return 1
}

# redis_ha_master_from_files: the master's port as the Sentinels last recorded it (the file with
# the highest config epoch), for a start while no Sentinel runs.
redis_ha_master_from_files() {
  local s f epoch best=-1 port=""
  for s in "${REDIS_HA_SENTINELS[@]}"; do
    f=$REDIS_HA_DIR/$s/sentinel.conf
    [ -f "$f" ] || continue
    epoch=$(awk -v m="$REDIS_HA_MASTER_NAME" '$1 == "sentinel" && $2 == "config-epoch" && $3 == m {print $4}' "$f")
    epoch=${epoch:-0}
    if [ "$epoch" -gt "$best" ]; then
      best=$epoch
      port=$(awk -v m="$REDIS_HA_MASTER_NAME" '$1 == "sentinel" && $2 == "monitor" && $3 == m {print $5}' "$f")
    fi
  done
  [ -n "$port" ] && echo "$port"
}

# redis_ha_master_port: who is (or was last) the master; redis-1 on the first start.
redis_ha_master_port() {
  redis_ha_master_from_sentinels || redis_ha_master_from_files || redis_ha_port redis-1
}

redis_ha_prepare() {
  mkdir -p "$REDIS_HA_DIR" "$HA_RUN_DIR" "$HA_LOG_DIR"
  chmod 700 "$REDIS_HA_DIR"
  if [ ! -s "$REDIS_HA_DIR/password" ]; then
    if compgen -G "$REDIS_HA_DIR/*/*.conf" >/dev/null; then
      die "redis: $REDIS_HA_DIR/password is gone but the servers' configuration holds the old one; 'tools/stack down' and remove $REDIS_HA_DIR"
    fi
    # 32 random bytes as hex: nothing to quote in a URL or in Redis's configuration.
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$REDIS_HA_DIR/password.tmp")
    mv -f "$REDIS_HA_DIR/password.tmp" "$REDIS_HA_DIR/password"
  fi
}

# redis_ha_configure NAME: renders NAME's configuration file unless it exists.
redis_ha_configure() {
  local name=$1 dir=$REDIS_HA_DIR/$1 conf replicaof=""
  case $name in
    redis-*) conf=$dir/redis.conf ;;
    *) conf=$dir/sentinel.conf ;;
  esac
  [ -f "$conf" ] && return 0
  mkdir -p "$dir"
  (
    umask 077
    case $name in
      redis-*)
        [ "$name" = redis-1 ] || replicaof="replicaof 127.0.0.1 $(redis_ha_port redis-1)"
        render "$STACK_D/ha/redis-server.conf" "$conf" PORT="$(redis_ha_port "$name")" \
          PIDFILE="$HA_RUN_DIR/$name.pid" LOGFILE="$HA_LOG_DIR/$name.log" DIR="$dir" \
          PASSWORD="$(redis_ha_password)" REPLICAOF="$replicaof"
        ;;
      *)
        render "$STACK_D/ha/redis-sentinel.conf" "$conf" PORT="$(redis_ha_port "$name")" \
          PIDFILE="$HA_RUN_DIR/$name.pid" LOGFILE="$HA_LOG_DIR/$name.log" DIR="$dir" \
          PASSWORD="$(redis_ha_password)" MASTER_NAME="$REDIS_HA_MASTER_NAME" \
          MASTER_PORT="$(redis_ha_master_port)"
        ;;
    esac
  )
}

# redis_ha_start_one NAME: starts the server or Sentinel unless it runs; waits until it answers.
redis_ha_start_one() {
  local name=$1 port args=() master
  port=$(redis_ha_port "$name")
  if redis_ha_pid "$name" >/dev/null; then
    wait_until "$TIMEOUT" "$name on port $port" redis_ha_answers "$name"
    return 0
  fi
  port_free_or_die "$name" "$port"
  redis_ha_prepare
  redis_ha_configure "$name"
  rm -f "$HA_RUN_DIR/$name.pid"
  case $name in
    redis-*)
      # Its configuration says what its role was; the Sentinels say what it is now.
      master=$(redis_ha_master_port)
      if [ "$master" = "$port" ]; then
        args=(--replicaof no one)
        log "$name: starting on 127.0.0.1:$port (master)"
      else
        args=(--replicaof 127.0.0.1 "$master")
        log "$name: starting on 127.0.0.1:$port (replica of 127.0.0.1:$master)"
      fi
      # (umask: the files Redis rewrites hold the password)
      (umask 077 && exec redis-server "$REDIS_HA_DIR/$name/redis.conf" "${args[@]}") </dev/null \
        >>"$HA_LOG_DIR/$name.log" 2>&1 ||
        { tail -n 20 "$HA_LOG_DIR/$name.log" >&2; die "$name did not start"; }
      ;;
    *)
      log "$name: starting on 127.0.0.1:$port"
      (umask 077 && exec redis-sentinel "$REDIS_HA_DIR/$name/sentinel.conf") </dev/null \
        >>"$HA_LOG_DIR/$name.log" 2>&1 ||
        { tail -n 20 "$HA_LOG_DIR/$name.log" >&2; die "$name did not start"; }
      ;;
  esac
  wait_until "$TIMEOUT" "$name on port $port" redis_ha_answers "$name"
  wait_until 10 "$name's pid file" redis_ha_pid "$name" >/dev/null
}

redis_ha_stop_one() {
  local name=$1 pid
  if ! pid=$(redis_ha_pid "$name"); then
    rm -f "$HA_RUN_DIR/$name.pid"
    log "$name: not running"
    return 0
  fi
  stop_pid "$name" "$pid" "$HA_RUN_DIR/$name.pid" "$TIMEOUT" || true
}

# The replication is healthy: the master has a replica online for every other running server.
redis_ha_replicating() {
  local master_port name running=0 info
  master_port=$(redis_ha_master_port)
  for name in "${REDIS_HA_SERVERS[@]}"; do
    [ "$(redis_ha_port "$name")" = "$master_port" ] && continue
    redis_ha_pid "$name" >/dev/null && running=$((running + 1))
  done
  info=$(redis_ha_cli "$master_port" info replication) || return 1
  [[ $info == *role:master* ]] || return 1
  [ "$(grep -c 'state=online' <<<"$info")" -ge "$running" ]
}

# redis_ha_sentinel_field NAME FIELD: a field of `SENTINEL master kurt` on Sentinel NAME.
redis_ha_sentinel_field() {
  redis_ha_cli "$(redis_ha_port "$1")" sentinel master "$REDIS_HA_MASTER_NAME" |
    awk -v f="$2" 'NR % 2 == 1 && $0 == f {getline; print; exit}'
}

# Every running Sentinel knows the other running ones (they find each other through the master
# within a few seconds; a failover needs a majority of them).
redis_ha_sentinels_acquainted() {
  local s running=0 others
  for s in "${REDIS_HA_SENTINELS[@]}"; do redis_ha_pid "$s" >/dev/null && running=$((running + 1)); done
  for s in "${REDIS_HA_SENTINELS[@]}"; do
    redis_ha_pid "$s" >/dev/null || continue
    others=$(redis_ha_sentinel_field "$s" num-other-sentinels)
    [ "${others:-0}" -ge $((running - 1)) ] || return 1
  done
}

ha_redis_up() {
  local name master master_name
  apt_install redis-server redis-tools redis-sentinel
  redis_ha_prepare
  # The master first, then its replica, then the Sentinels (which learn of the replica from it).
  master=$(redis_ha_master_port)
  master_name=$(redis_ha_name_of_port "$master") || die "redis: the Sentinels name an unknown master (port $master)"
  redis_ha_start_one "$master_name"
  for name in "${REDIS_HA_SERVERS[@]}"; do
    [ "$name" = "$master_name" ] || redis_ha_start_one "$name"
  done
  for name in "${REDIS_HA_SENTINELS[@]}"; do redis_ha_start_one "$name"; done
  wait_until "$TIMEOUT" "redis replication to the replica" redis_ha_replicating
  wait_until "$TIMEOUT" "the redis Sentinels to find each other" redis_ha_sentinels_acquainted
}

ha_redis_down() {
  local name
  # The Sentinels first, so that stopping the master does not start a failover.
  for name in "${REDIS_HA_SENTINELS[@]}" "${REDIS_HA_SERVERS[@]}"; do redis_ha_stop_one "$name"; done
}

ha_redis_status() {
  local name port pid state rc=0 role master others replicas
  for name in "${REDIS_HA_SERVERS[@]}" "${REDIS_HA_SENTINELS[@]}"; do
    port=$(redis_ha_port "$name")
    state=stopped
    if pid=$(redis_ha_pid "$name"); then
      if ! redis_ha_answers "$name"; then
        state="not answering (pid $pid)"
        rc=3
      elif [[ $name == redis-* ]]; then
        role=$(redis_ha_role "$name")
        [ "$role" = slave ] && role=replica
        state="running (pid $pid), $role"
      else
        master=$(redis_ha_cli "$port" sentinel get-master-addr-by-name "$REDIS_HA_MASTER_NAME" |
          paste -sd:)
        others=$(redis_ha_sentinel_field "$name" num-other-sentinels)
        replicas=$(redis_ha_sentinel_field "$name" num-slaves)
        state="running (pid $pid), master $master, ${replicas:-0} replica(s), ${others:-0} other sentinel(s)"
      fi
    else
      rc=3
    fi
    printf '%-11s 127.0.0.1:%-6s %s\n' "$name" "$port" "$state"
  done
  return $rc
}

ha_redis_env() {
  local s list=()
  for s in "${REDIS_HA_SENTINELS[@]}"; do list+=("127.0.0.1:$(redis_ha_port "$s")"); done
  echo "KURT_REDIS_SENTINELS=$(IFS=,; echo "${list[*]}")"
  echo "KURT_REDIS_MASTER_NAME=$REDIS_HA_MASTER_NAME"
  echo "KURT_REDIS_PASSWORD=$(redis_ha_password)"
}

ha_redis_owns() { redis_ha_port "$1" >/dev/null; }

ha_redis_start() {
  apt_install redis-server redis-tools redis-sentinel
  redis_ha_start_one "$1"
  if [[ $1 == redis-* ]]; then
    wait_until "$TIMEOUT" "redis replication to $1" redis_ha_replicating
  fi
}

ha_redis_stop() { redis_ha_stop_one "$1"; }

# shellcheck shell=bash disable=SC2153 # HA_DIR, HA_RUN_DIR, HA_LOG_DIR, TIMEOUT: tools/stack's
# The --ha stack's PostgreSQL (sourced by tools/stack; see its "--ha" part): what a deployment
# runs, on loopback.
#
#   etcd-1..3     a 3-member etcd (Debian etcd-server), Patroni's DCS   client 25000/25002/25004
#                                                                      (peers 25001/25003/25005)
#   patroni-1..3  Patroni (Debian patroni), each running a PostgreSQL 15 server   REST 25010-25012
#                 one leader, two replicas, synchronous_mode (one sync standby)     PG 25020-25022
#   haproxy       routes by Patroni's REST health checks, as Patroni documents:
#                 25030 to the leader (OPTIONS /primary), 25031 to the replicas (OPTIONS /replica);
#                 its stats page on 25032
#   pgbouncer     transaction pooling (as deploy/base/pgbouncer.ini) in front of HAProxy   25040
#                 database "kurt" = the leader, "kurt_replica" = the replicas, any other name = that
#                 database on the leader (scratch databases of tests)
#
# The services reach PostgreSQL only through PgBouncer (KURT_PG_PRIMARY_URL, KURT_PG_REPLICA_URL).
# What needs a session of its own goes to the leader through HAProxy, past PgBouncer: LISTEN
# (KURT_PG_LISTEN_URL) and migrations (KURT_PG_ADMIN_URL, session advisory lock).
#
# `tools/stack stop --ha NAME` stops one server gracefully (patroni-N: Patroni stops its PostgreSQL
# and hands the leader key over); `start --ha NAME` starts it and waits until it serves (patroni-N:
# until it runs as a replica and the cluster has its leader and sync standby again). A node loss is
# the fault tests' to make: SIGKILL the Patroni of $HA_DIR/run/patroni-N.pid together with the
# postmaster of $HA_DIR/pg/patroni-N/data/postmaster.pid (and its children); `start --ha
# patroni-N` then brings the member back, rewound, as a replica.
#
# PostgreSQL refuses to run as root, PgBouncer too: as root, Patroni and PgBouncer run as the
# `postgres` system user (which owns their directories); etcd and HAProxy run as the caller.

HA_COMPONENTS+=(pg)

HA_PG_DIR=$HA_DIR/pg
HA_PG_PACKAGES=(postgresql etcd-server patroni haproxy pgbouncer curl util-linux)
HA_PG_MEMBERS=(1 2 3)
HA_PG_SCOPE=kurt-ha
HA_PG_HAPROXY_PRIMARY=25030
HA_PG_HAPROXY_REPLICAS=25031
HA_PG_HAPROXY_STATS=25032
HA_PG_PGBOUNCER=25040

ha_pg_etcd_port() { echo $((25000 + 2 * ($1 - 1))); }
ha_pg_etcd_peer_port() { echo $((25001 + 2 * ($1 - 1))); }
ha_pg_rest_port() { echo $((25009 + $1)); }
ha_pg_pg_port() { echo $((25019 + $1)); }
ha_pg_member_dir() { echo "$HA_PG_DIR/patroni-$1"; }

ha_pg_etcd_hosts() {
  local n hosts=()
  for n in "${HA_PG_MEMBERS[@]}"; do hosts+=("127.0.0.1:$(ha_pg_etcd_port "$n")"); done
  (IFS=,; echo "${hosts[*]}")
}

# ha_pg_port NAME: the port NAME serves clients on (for the status lines).
ha_pg_port() {
  case $1 in
    etcd-*) ha_pg_etcd_port "${1#etcd-}" ;;
    patroni-*) ha_pg_pg_port "${1#patroni-}" ;;
    haproxy) echo "$HA_PG_HAPROXY_PRIMARY" ;;
    pgbouncer) echo "$HA_PG_PGBOUNCER" ;;
  esac
}

# ha_pg_identity NAME: a string the command line of NAME's process contains.
ha_pg_identity() {
  case $1 in
    etcd-*) echo "$HA_PG_DIR/$1" ;;
    patroni-*) echo "$(ha_pg_member_dir "${1#patroni-}")/patroni.yml" ;;
    haproxy) echo "$HA_PG_DIR/haproxy.cfg" ;;
    pgbouncer) echo "$HA_PG_DIR/pgbouncer/pgbouncer.ini" ;;
  esac
}

# ha_pg_pid NAME: prints NAME's pid if its pid file names a live process that is NAME.
ha_pg_pid() {
  local pid
  pid=$(head -n1 "$HA_RUN_DIR/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" && cmdline_has "$pid" "$(ha_pg_identity "$1")" || return 1
  echo "$pid"
}

# ha_pg_launch NAME AS CMD...: runs CMD in a session of its own (a signal to our process group
# does not reach it), as `postgres` when AS is postgres and we are root; its pid (the same
# process all along: setsid, bash and setpriv exec) in $HA_RUN_DIR/NAME.pid, its output in
# $HA_LOG_DIR/NAME.log.
ha_pg_launch() {
  local name=$1 as=$2 pre=()
  shift 2
  if [ "$as" = postgres ] && [ "$(id -u)" = 0 ]; then
    pre=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  rm -f "$HA_RUN_DIR/$name.pid"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$HA_RUN_DIR/$name.pid" "${pre[@]}" "$@" \
    </dev/null >>"$HA_LOG_DIR/$name.log" 2>&1 &
  wait_until 10 "$name's pid file" test -s "$HA_RUN_DIR/$name.pid"
}

# ha_pg_own PATH...: hands PATH to the postgres user (when we are root).
ha_pg_own() { if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$@"; fi; }

ha_pg_http() { # URL: prints the HTTP status code (000 when nothing answers)
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# etcd

ha_pg_etcd_healthy() {
  [[ $(curl -s -m 2 "http://127.0.0.1:$(ha_pg_etcd_port "$1")/health" 2>/dev/null) == *'"health":"true"'* ]]
}

# ha_pg_etcd_settled N: etcd-N is healthy and reports the cluster's version (3.0.0 until its
# members agree: a Patroni that starts meanwhile picks the wrong API and waits on etcd).
ha_pg_etcd_settled() {
  ha_pg_etcd_healthy "$1" &&
    [[ $(curl -s -m 2 "http://127.0.0.1:$(ha_pg_etcd_port "$1")/version" 2>/dev/null) =~ \"etcdcluster\":\"3\.[1-9] ]]
}

ha_pg_etcd_launch() {
  local n=$1 name=etcd-$1 cluster=() m
  ha_pg_pid "$name" >/dev/null && return 0
  port_free_or_die "$name" "$(ha_pg_etcd_port "$n")" "$(ha_pg_etcd_peer_port "$n")"
  for m in "${HA_PG_MEMBERS[@]}"; do cluster+=("etcd-$m=http://127.0.0.1:$(ha_pg_etcd_peer_port "$m")"); done
  mkdir -p "$HA_PG_DIR/$name"
  chmod 700 "$HA_PG_DIR/$name"
  log "$name: starting on 127.0.0.1:$(ha_pg_etcd_port "$n")"
  # (--initial-cluster* only matter the first time, while the data directory is empty)
  ha_pg_launch "$name" self etcd --name "$name" --data-dir "$HA_PG_DIR/$name" \
    --listen-client-urls "http://127.0.0.1:$(ha_pg_etcd_port "$n")" \
    --advertise-client-urls "http://127.0.0.1:$(ha_pg_etcd_port "$n")" \
    --listen-peer-urls "http://127.0.0.1:$(ha_pg_etcd_peer_port "$n")" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(ha_pg_etcd_peer_port "$n")" \
    --initial-cluster "$(IFS=,; echo "${cluster[*]}")" --initial-cluster-token kurt-ha-pg \
    --initial-cluster-state new --logger zap --log-outputs stderr
}

# ---------------------------------------------------------------------------------------------
# Patroni and PostgreSQL

# ha_pg_configure_member N: (re)writes patroni-N's patroni.yml. The `bootstrap` part is read once,
# by the member that initialises the cluster; after that the DCS (etcd) holds the cluster-wide
# settings.
ha_pg_configure_member() {
  local n=$1 dir
  dir=$(ha_pg_member_dir "$n")
  mkdir -p "$dir"
  cat >"$dir/patroni.yml.tmp" <<EOF
# Written by tools/stack up --ha (tools/stack.d/ha/10-pg.sh) before every start.
scope: $HA_PG_SCOPE
namespace: /kurt/
name: patroni-$n
restapi:
  listen: 127.0.0.1:$(ha_pg_rest_port "$n")
  connect_address: 127.0.0.1:$(ha_pg_rest_port "$n")
etcd3:
  hosts: $(ha_pg_etcd_hosts)
bootstrap:
  dcs:
    # A leader that stops renewing its key for ttl seconds is replaced; every member acts each
    # loop_wait seconds. synchronous_mode: a commit returns once the sync standby has its WAL, and
    # only that standby may be promoted, so an acknowledged write survives losing the leader.
    ttl: 10
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 300
        shared_buffers: 128MB
        effective_cache_size: 512MB
        work_mem: 4MB
        maintenance_work_mem: 64MB
        max_worker_processes: 8
        max_parallel_workers: 2
        max_parallel_workers_per_gather: 1
        wal_level: replica
        hot_standby: 'on'
        hot_standby_feedback: 'on'
        wal_receiver_status_interval: 1s
        wal_retrieve_retry_interval: 1s
        max_wal_senders: 10
        max_replication_slots: 10
        max_slot_wal_keep_size: 2GB
        max_wal_size: 1GB
        min_wal_size: 80MB
        synchronous_commit: 'on'
        timezone: UTC
        log_timezone: UTC
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  - data-checksums
  # The database Kurt uses, made once when the cluster is initialised (as tools/stack's
  # pg_bootstrap does for the default stack); its migrations come from kurt-migrate.
  post_bootstrap: $PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE kurt'
postgresql:
  listen: 127.0.0.1:$(ha_pg_pg_port "$n")
  connect_address: 127.0.0.1:$(ha_pg_pg_port "$n")
  data_dir: $dir/data
  bin_dir: $PG_BIN
  pgpass: $dir/pgpass
  # The bootstrap superuser is kurt (initdb -U kurt), as in the default stack, trusted over
  # 127.0.0.1 only; it also replicates and rewinds.
  authentication:
    superuser:
      username: kurt
    replication:
      username: kurt
    rewind:
      username: kurt
  parameters:
    unix_socket_directories: ''
    logging_collector: 'on'
    log_directory: log
    log_filename: postgresql.log
    log_line_prefix: '%m [%p] %q%u@%d '
  pg_hba:
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
  # A new replica clones the leader without waiting for a spread checkpoint (minutes).
  basebackup:
    checkpoint: fast
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
watchdog:
  mode: 'off'
EOF
  mv -f "$dir/patroni.yml.tmp" "$dir/patroni.yml"
  ha_pg_own "$dir"
}

ha_pg_patroni_launch() {
  local n=$1 name=patroni-$1
  ha_pg_pid "$name" >/dev/null && return 0
  port_free_or_die "$name" "$(ha_pg_rest_port "$n")" "$(ha_pg_pg_port "$n")"
  ha_pg_configure_member "$n"
  log "$name: starting (PostgreSQL on 127.0.0.1:$(ha_pg_pg_port "$n"), REST on $(ha_pg_rest_port "$n"))"
  ha_pg_launch "$name" postgres patroni "$(ha_pg_member_dir "$n")/patroni.yml"
}

# ha_pg_members: "NAME ROLE STATE" per member, as the first Patroni that answers sees the
# cluster (GET /cluster; ROLE leader, sync_standby or replica). False when none answers.
ha_pg_members() {
  local n json
  for n in "${HA_PG_MEMBERS[@]}"; do
    json=$(curl -s -m 2 "http://127.0.0.1:$(ha_pg_rest_port "$n")/cluster" 2>/dev/null) || continue
    [[ $json == *'"members"'* ]] || continue
    grep -o '"name": "[^"]*", "role": "[^"]*", "state": "[^"]*"' <<<"$json" |
      sed 's/"name": "\([^"]*\)", "role": "\([^"]*\)", "state": "\([^"]*\)"/\1 \2 \3/'
    return 0
  done
  return 1
}

# ha_pg_role N: leader, sync_standby, replica or down, as patroni-N's own REST API says (the
# checks HAProxy makes; /health: its PostgreSQL runs).
ha_pg_role() {
  local rest members line
  rest=http://127.0.0.1:$(ha_pg_rest_port "$1")
  [ "$(ha_pg_http "$rest/health")" = 200 ] || { echo down; return 0; }
  members=$(ha_pg_members) || { echo down; return 0; }
  line=$(grep "^patroni-$1 " <<<"$members") || { echo down; return 0; }
  line=${line#* }
  echo "${line% *}"
}

# ha_pg_cluster_ready: one leader, every other member a running replica, one of them the sync
# standby, and HAProxy's checks agree (the leader answers /primary, the others /replica).
ha_pg_cluster_ready() {
  local members name role state leaders=0 syncs=0 count=0 n rest
  members=$(ha_pg_members) || return 1
  while read -r name role state; do
    [ "$state" = running ] || [ "$state" = streaming ] || return 1
    count=$((count + 1))
    n=${name#patroni-}
    rest=http://127.0.0.1:$(ha_pg_rest_port "$n")
    case $role in
      leader)
        leaders=$((leaders + 1))
        [ "$(ha_pg_http "$rest/primary")" = 200 ] || return 1
        ;;
      sync_standby)
        syncs=$((syncs + 1))
        [ "$(ha_pg_http "$rest/replica")" = 200 ] || return 1
        ;;
      replica) [ "$(ha_pg_http "$rest/replica")" = 200 ] || return 1 ;;
      *) return 1 ;;
    esac
  done <<<"$members"
  [ $count = ${#HA_PG_MEMBERS[@]} ] && [ $leaders = 1 ] && [ $syncs = 1 ]
}

# ha_pg_patroni_stop N: SIGTERM (Patroni stops PostgreSQL, fast, and gives up the leader key);
# SIGKILL after the timeout, and then the postmaster too.
ha_pg_patroni_stop() {
  local n=$1 name=patroni-$1 pid pm
  pm=$(head -n1 "$(ha_pg_member_dir "$n")/data/postmaster.pid" 2>/dev/null) || true
  if pid=$(ha_pg_pid "$name"); then
    stop_pid "$name" "$pid" "$HA_RUN_DIR/$name.pid" "$TIMEOUT" || true
  else
    log "$name: not running"
  fi
  rm -f "$HA_RUN_DIR/$name.pid"
  # A postmaster left behind (its Patroni killed) must not hold the port and the data directory.
  if [[ $pm =~ ^[0-9]+$ ]] && pid_alive "$pm" && cmdline_has "$pm" "$(ha_pg_member_dir "$n")/data"; then
    log "$name: stopping its orphaned postmaster (pid $pm)"
    kill -INT "$pm"
    wait_gone "$pm" "$TIMEOUT" || { kill -KILL "$pm" 2>/dev/null || true; }
  fi
}

# ---------------------------------------------------------------------------------------------
# HAProxy and PgBouncer

ha_pg_configure_haproxy() {
  local n servers_primary="" servers_replicas=""
  for n in "${HA_PG_MEMBERS[@]}"; do
    servers_primary+="    server patroni-$n 127.0.0.1:$(ha_pg_pg_port "$n") maxconn 250 check port $(ha_pg_rest_port "$n")"$'\n'
  done
  servers_replicas=$servers_primary
  cat >"$HA_PG_DIR/haproxy.cfg.tmp" <<EOF
# Written by tools/stack up --ha (tools/stack.d/ha/10-pg.sh). The layout Patroni documents: one
# port routes to the member whose REST API answers 200 to OPTIONS /primary, one round robin to
# those answering /replica. Checked every second, down after 2 failures, up after 1 success
# (faster than Patroni's example, for a short failover); a server marked down has its sessions
# cut, so no client stays on a demoted or lost leader.
global
    maxconn 2000
    stats timeout 30s

defaults
    mode tcp
    retries 2
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 2s

listen stats
    mode http
    bind 127.0.0.1:$HA_PG_HAPROXY_STATS
    stats enable
    stats uri /

listen primary
    bind 127.0.0.1:$HA_PG_HAPROXY_PRIMARY
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
${servers_primary}
listen replicas
    bind 127.0.0.1:$HA_PG_HAPROXY_REPLICAS
    balance roundrobin
    option httpchk OPTIONS /replica
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
${servers_replicas}
EOF
  mv -f "$HA_PG_DIR/haproxy.cfg.tmp" "$HA_PG_DIR/haproxy.cfg"
}

ha_pg_haproxy_launch() {
  ha_pg_pid haproxy >/dev/null && return 0
  port_free_or_die haproxy "$HA_PG_HAPROXY_PRIMARY" "$HA_PG_HAPROXY_REPLICAS" "$HA_PG_HAPROXY_STATS"
  ha_pg_configure_haproxy
  haproxy -c -q -f "$HA_PG_DIR/haproxy.cfg" || die "haproxy: $HA_PG_DIR/haproxy.cfg is not valid"
  log "haproxy: starting on 127.0.0.1:$HA_PG_HAPROXY_PRIMARY (primary), $HA_PG_HAPROXY_REPLICAS (replicas)"
  # -db: in the foreground, one process (the pid file's).
  ha_pg_launch haproxy self haproxy -db -f "$HA_PG_DIR/haproxy.cfg"
}

ha_pg_configure_pgbouncer() {
  local dir=$HA_PG_DIR/pgbouncer
  mkdir -p "$dir"
  printf '"kurt" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini.tmp" <<EOF
; Written by tools/stack up --ha (tools/stack.d/ha/10-pg.sh). deploy/base/pgbouncer.ini's settings
; (transaction pooling; what that rules out is listed there), with local addresses and trust.
[databases]
kurt = host=127.0.0.1 port=$HA_PG_HAPROXY_PRIMARY dbname=kurt
kurt_replica = host=127.0.0.1 port=$HA_PG_HAPROXY_REPLICAS dbname=kurt
; Any other database (tests' scratch databases) on the leader.
* = host=127.0.0.1 port=$HA_PG_HAPROXY_PRIMARY

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $HA_PG_PGBOUNCER
unix_socket_dir =
pool_mode = transaction
auth_type = trust
auth_file = $dir/userlist.txt
max_client_conn = 5000
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 5
reserve_pool_timeout = 2
server_lifetime = 1800
server_idle_timeout = 300
server_check_query = select 1
; After a failed login PgBouncer waits this long before it tries again (default 15 s): through a
; failover its connections fail until HAProxy routes to the new leader, and every second waited
; after that adds to the time writes fail.
server_login_retry = 1
; A query that waits longer than this for a server connection (none reachable: a failover) fails
; at once instead of hanging until the caller's deadline (default 120 s): the service answers
; UNAVAILABLE (503, retry) within the edge's 10 s rather than the edge answering 504.
query_wait_timeout = 5
ignore_startup_parameters = extra_float_digits,options
admin_users = kurt
stats_users = kurt
log_connections = 0
log_disconnections = 0
logfile =
pidfile =
EOF
  mv -f "$dir/pgbouncer.ini.tmp" "$dir/pgbouncer.ini"
  ha_pg_own "$dir"
}

ha_pg_pgbouncer_launch() {
  ha_pg_pid pgbouncer >/dev/null && return 0
  port_free_or_die pgbouncer "$HA_PG_PGBOUNCER"
  ha_pg_configure_pgbouncer
  log "pgbouncer: starting on 127.0.0.1:$HA_PG_PGBOUNCER"
  ha_pg_launch pgbouncer postgres pgbouncer "$HA_PG_DIR/pgbouncer/pgbouncer.ini"
}

ha_pg_psql() { # PORT DB SQL
  "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U kurt -d "$2" -c "$3" 2>/dev/null
}

ha_pg_pgbouncer_serves() {
  [ "$(ha_pg_psql "$HA_PG_PGBOUNCER" kurt 'select 1' 2>/dev/null)" = 1 ] &&
    [ "$(ha_pg_psql "$HA_PG_PGBOUNCER" kurt_replica 'select pg_is_in_recovery()' 2>/dev/null)" = t ]
}

ha_pg_haproxy_serves() {
  [ "$(ha_pg_psql "$HA_PG_HAPROXY_PRIMARY" kurt 'select pg_is_in_recovery()' 2>/dev/null)" = f ]
}

# ---------------------------------------------------------------------------------------------
# The component's interface (tools/stack)

ha_pg_prepare() {
  apt_install "${HA_PG_PACKAGES[@]}"
  [ -x "$PG_BIN/pg_ctl" ] || die "no PostgreSQL 15 server binaries in $PG_BIN"
  mkdir -p "$HA_PG_DIR" "$HA_RUN_DIR" "$HA_LOG_DIR"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user (the postgresql package creates it)"
    setpriv --reuid=postgres --regid=postgres --init-groups -- test -x "$HA_PG_DIR" ||
      die "the postgres user cannot reach $HA_PG_DIR (a parent directory is closed to it); set KURT_STATE_DIR elsewhere"
  fi
}

ha_pg_up() {
  local t0=$SECONDS n
  ha_pg_prepare
  for n in "${HA_PG_MEMBERS[@]}"; do ha_pg_etcd_launch "$n"; done
  for n in "${HA_PG_MEMBERS[@]}"; do wait_until "$TIMEOUT" "etcd-$n" ha_pg_etcd_settled "$n"; done
  # All three at once: one wins the initialize key in etcd and bootstraps, the others wait for
  # its leader key and then clone it.
  for n in "${HA_PG_MEMBERS[@]}"; do ha_pg_patroni_launch "$n"; done
  ha_pg_haproxy_launch
  ha_pg_pgbouncer_launch
  wait_until "$TIMEOUT" "a Patroni leader, a sync standby and a replica" ha_pg_cluster_ready
  wait_until "$TIMEOUT" "HAProxy to route to the leader" ha_pg_haproxy_serves
  wait_until "$TIMEOUT" "PgBouncer to serve kurt and kurt_replica" ha_pg_pgbouncer_serves
  log "pg: up ($((SECONDS - t0)) s)"
}

ha_pg_down() {
  local n role leader=()
  ha_pg_stop_daemon pgbouncer
  ha_pg_stop_daemon haproxy
  # The replicas first, so that stopping the leader does not make one of them leader.
  for n in "${HA_PG_MEMBERS[@]}"; do
    role=$(ha_pg_role "$n")
    if [ "$role" = leader ]; then leader+=("$n"); else ha_pg_patroni_stop "$n"; fi
  done
  for n in "${leader[@]}"; do ha_pg_patroni_stop "$n"; done
  for n in "${HA_PG_MEMBERS[@]}"; do ha_pg_stop_daemon "etcd-$n"; done
}

ha_pg_stop_daemon() { # NAME
  local name=$1 pid
  if ! pid=$(ha_pg_pid "$name"); then
    rm -f "$HA_RUN_DIR/$name.pid"
    log "$name: not running"
    return 0
  fi
  stop_pid "$name" "$pid" "$HA_RUN_DIR/$name.pid" "$TIMEOUT" || true
}

ha_pg_status_line() { # NAME: its line; true when it runs and serves
  local name=$1 pid state=stopped ok=1 extra=""
  if pid=$(ha_pg_pid "$name"); then
    case $name in
      etcd-*) ha_pg_etcd_healthy "${name#etcd-}" && ok=0 ;;
      patroni-*)
        extra=$(ha_pg_role "${name#patroni-}")
        [ "$extra" != down ] && ok=0
        ;;
      haproxy) ha_pg_haproxy_serves && ok=0 ;;
      pgbouncer) ha_pg_pgbouncer_serves && ok=0 ;;
    esac
    if [ $ok = 0 ]; then state="running (pid $pid)"; else state="not serving (pid $pid)"; fi
  fi
  printf '%-11s 127.0.0.1:%-6s %s%s\n' "$name" "$(ha_pg_port "$name")" "$state" "${extra:+, $extra}"
  return $ok
}

ha_pg_names() {
  local n
  for n in "${HA_PG_MEMBERS[@]}"; do echo "etcd-$n"; done
  for n in "${HA_PG_MEMBERS[@]}"; do echo "patroni-$n"; done
  echo haproxy
  echo pgbouncer
}

ha_pg_status() {
  local name rc=0
  while read -r name; do ha_pg_status_line "$name" || rc=3; done < <(ha_pg_names)
  [ $rc = 0 ] && ha_pg_cluster_ready || rc=3
  return $rc
}

ha_pg_env() {
  local n urls=()
  for n in "${HA_PG_MEMBERS[@]}"; do urls+=("http://127.0.0.1:$(ha_pg_rest_port "$n")"); done
  cat <<EOF
KURT_PATRONI_URLS=$(IFS=,; echo "${urls[*]}")
KURT_PG_PRIMARY_URL=postgresql://kurt@127.0.0.1:$HA_PG_PGBOUNCER/kurt
KURT_PG_REPLICA_URL=postgresql://kurt@127.0.0.1:$HA_PG_PGBOUNCER/kurt_replica
KURT_PG_LISTEN_URL=postgresql://kurt@127.0.0.1:$HA_PG_HAPROXY_PRIMARY/kurt
KURT_PG_ADMIN_URL=postgresql://kurt@127.0.0.1:$HA_PG_HAPROXY_PRIMARY/kurt
EOF
}

ha_pg_owns() { ha_pg_names | grep -qx -- "$1"; }

ha_pg_start() {
  local name=$1 n
  ha_pg_prepare
  case $name in
    etcd-*)
      ha_pg_etcd_launch "${name#etcd-}"
      wait_until "$TIMEOUT" "$name" ha_pg_etcd_healthy "${name#etcd-}"
      ;;
    patroni-*)
      n=${name#patroni-}
      ha_pg_patroni_launch "$n"
      wait_until "$TIMEOUT" "a Patroni leader, a sync standby and a replica" ha_pg_cluster_ready
      ;;
    haproxy)
      ha_pg_haproxy_launch
      wait_until "$TIMEOUT" "HAProxy to route to the leader" ha_pg_haproxy_serves
      ;;
    pgbouncer)
      ha_pg_pgbouncer_launch
      wait_until "$TIMEOUT" "PgBouncer to serve kurt and kurt_replica" ha_pg_pgbouncer_serves
      ;;
  esac
}

ha_pg_stop() {
  case $1 in
    patroni-*) ha_pg_patroni_stop "${1#patroni-}" ;;
    *) ha_pg_stop_daemon "$1" ;;
  esac
}

# shellcheck shell=bash
# The --ha stack's Kafka (sourced by tools/stack): three Apache Kafka nodes in KRaft mode, each a
# broker and a controller (process.roles=broker,controller), so three controllers form the quorum
# and any one node can be lost. Combined nodes rather than three brokers beside three controllers:
# six JVMs would cost twice the memory and the start-up time on a two-core machine for no
# difference the fault tests can see; a SIGKILLed node takes one voter of three with it, and the
# other two still elect a leader. (deploy/ runs them apart, as production should.)
#
#   kafka-N   broker 127.0.0.1:2520N, controller 127.0.0.1:2521N   (N = 1, 2, 3; node.id N)
#
# The same jars (kafka_libs, tools/pom.xml) and server template (stack.d/kafka-server.properties)
# as the default stack's broker, with replication factor 3 and min.insync.replicas=2 as the
# brokers' defaults, which every topic here gets (tools/stack's, the internal offsets and
# transactions topics, and the tests' own). With acks=all, a message is acknowledged once two
# replicas have it.
#
# tools/stack stop --ha kafka-N sends SIGTERM; with KURT_STACK_SIGNAL=KILL in the environment it
# sends SIGKILL instead (the fault tests), and start brings the node back (it recovers its log and
# catches up). State: $HA_DIR/kafka/N/ (data, server.properties), logs $HA_LOG_DIR/kafka-N.*.

HA_COMPONENTS+=(kafka)

HA_KAFKA_NODES=(1 2 3)
HA_KAFKA_DIR=$HA_DIR/kafka
HA_KAFKA_BROKER_BASE=25200
HA_KAFKA_CONTROLLER_BASE=25210

ha_kafka_port() { echo $((HA_KAFKA_BROKER_BASE + $1)); }
ha_kafka_controller_port() { echo $((HA_KAFKA_CONTROLLER_BASE + $1)); }

ha_kafka_brokers() {
  local n out=()
  for n in "${HA_KAFKA_NODES[@]}"; do out+=("127.0.0.1:$(ha_kafka_port "$n")"); done
  local IFS=,
  echo "${out[*]}"
}

ha_kafka_voters() {
  local n out=()
  for n in "${HA_KAFKA_NODES[@]}"; do out+=("$n@127.0.0.1:$(ha_kafka_controller_port "$n")"); done
  local IFS=,
  echo "${out[*]}"
}

ha_kafka_node() { # NAME: prints N of kafka-N; false for another name
  [[ $1 =~ ^kafka-([0-9]+)$ ]] && [[ " ${HA_KAFKA_NODES[*]} " == *" ${BASH_REMATCH[1]} "* ]] &&
    echo "${BASH_REMATCH[1]}"
}

# ha_kafka_pid N: the node's pid, if its process is alive and is that node.
ha_kafka_pid() {
  local pid
  pid=$(head -n1 "$HA_RUN_DIR/kafka-$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" &&
    cmdline_has "$pid" "$HA_KAFKA_DIR/$1/server.properties" || return 1
  echo "$pid"
}

# ha_kafka_answers N: the node's broker answers a metadata request and lists itself.
ha_kafka_answers() {
  local port meta
  port=$(ha_kafka_port "$1")
  port_open "$port" && meta=$(kafka_metadata "127.0.0.1:$port") || return 1
  [[ $meta == *"broker $1 at 127.0.0.1:$port"* ]]
}

ha_kafka_ready() { # N
  # The process just started: whether it lives, not what its command line says (empty while it
  # execs, which read as "exited").
  if ! pid_alive "$(head -n1 "$HA_RUN_DIR/kafka-$1.pid" 2>/dev/null)"; then
    tail -n 30 "$HA_LOG_DIR/kafka-$1.out" "$HA_LOG_DIR/kafka-$1.log" >&2 2>/dev/null || true
    die "kafka-$1 exited while starting (logs: $HA_LOG_DIR/kafka-$1.out, $HA_LOG_DIR/kafka-$1.log)"
  fi
  ha_kafka_answers "$1"
}

# ha_kafka_all_registered: every node is a live broker in the cluster's metadata.
ha_kafka_all_registered() {
  local meta
  meta=$(kafka_metadata "$(ha_kafka_brokers)") || return 1
  [[ $meta == *" ${#HA_KAFKA_NODES[@]} brokers:"* ]]
}

ha_kafka_cluster_id() {
  local f=$HA_KAFKA_DIR/cluster.id id
  if [ ! -s "$f" ]; then
    id=$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$HA_LOG_DIR/kafka-format.log")
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: StorageTool random-uuid gave '$id'"
    echo "$id" >"$f"
  fi
  cat "$f"
}

# ha_kafka_configure N: (re)writes the node's server.properties; formats its storage once.
ha_kafka_configure() {
  local n=$1 dir=$HA_KAFKA_DIR/$1
  mkdir -p "$dir"
  render "$STACK_D/kafka-server.properties" "$dir/server.properties" \
    NODE_ID="$n" VOTERS="$(ha_kafka_voters)" REPLICATION=3 MIN_ISR=2 \
    KAFKA_PORT="$(ha_kafka_port "$n")" CONTROLLER_PORT="$(ha_kafka_controller_port "$n")" \
    DATA_DIR="$dir/data"
  cat >>"$dir/server.properties" <<'EOF'

# --ha: a broker that stops heartbeating is fenced (and leaves every ISR) after 6 s instead of
# 9 s; this bounds how long acks=all producers stall when a broker dies.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
unclean.leader.election.enable=false
EOF
  [ -f "$dir/data/meta.properties" ] && return 0
  rm -rf "$dir/data"
  log "kafka-$n: formatting $dir/data"
  kafka_tool kafka.tools.StorageTool format -t "$(ha_kafka_cluster_id)" -c "$dir/server.properties" \
    >>"$HA_LOG_DIR/kafka-format.log" 2>&1 ||
    { tail -n 20 "$HA_LOG_DIR/kafka-format.log" >&2; die "kafka-$n: formatting the storage failed"; }
}

# ha_kafka_launch N: starts the node in the background unless it runs; does not wait.
HA_KAFKA_CDS_RECORDING=false
ha_kafka_launch() {
  local n=$1 dir=$HA_KAFKA_DIR/$1 cds=()
  ha_kafka_pid "$n" >/dev/null && return 0
  port_free_or_die "kafka-$n" "$(ha_kafka_port "$n")" "$(ha_kafka_controller_port "$n")"
  mkdir -p "$HA_KAFKA_DIR" "$HA_RUN_DIR" "$HA_LOG_DIR" "$LOG_DIR"
  kafka_libs
  ha_kafka_configure "$n"
  # The default broker's class-data archive serves these JVMs too; only one records a missing one.
  if ! $HA_KAFKA_CDS_RECORDING; then
    mapfile -t cds < <(kafka_cds_opts)
    kafka_cds_keep discard
    [[ ${cds[0]} != -XX:ArchiveClassesAtExit=* ]] || HA_KAFKA_CDS_RECORDING=true
  fi
  log "kafka-$n: starting on 127.0.0.1:$(ha_kafka_port "$n") (controller $(ha_kafka_controller_port "$n"))"
  rm -f "$HA_RUN_DIR/kafka-$n.pid"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$HA_RUN_DIR/kafka-$n.pid" \
    java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "${cds[@]}" -Dlog4j2.configurationFile="$STACK_D/kafka-log4j2.xml" \
    -Dkurt.kafka.log="$HA_LOG_DIR/kafka-$n.log" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >>"$HA_LOG_DIR/kafka-$n.out" 2>&1 &
  wait_until 10 "kafka-$n's pid file" test -s "$HA_RUN_DIR/kafka-$n.pid"
}

# ha_kafka_replicated: every partition of tools/stack's topics has three replicas, all in sync.
ha_kafka_replicated() {
  local meta t
  meta=$(kafka_metadata "$(ha_kafka_brokers)") || return 1
  for t in "${TOPICS[@]}"; do
    [ "$(awk -v t="topic \"$t\"" '
      index($0, t) { on = 1; next }
      /^  topic / { on = 0 }
      on && /partition/ { n++; if ($0 ~ /replicas: [0-9]+,[0-9]+,[0-9]+, isrs: [0-9]+,[0-9]+,[0-9]+/) ok++ }
      END { print (n > 0 && n == ok) ? "yes" : "no" }' <<<"$meta")" = yes ] || return 1
  done
}

ha_kafka_up() {
  local n
  apt_install kcat openjdk-17-jre-headless maven
  mkdir -p "$HA_KAFKA_DIR" "$HA_LOG_DIR" "$LOG_DIR"
  kafka_libs
  for n in "${HA_KAFKA_NODES[@]}"; do ha_kafka_configure "$n"; done
  for n in "${HA_KAFKA_NODES[@]}"; do ha_kafka_launch "$n"; done
  for n in "${HA_KAFKA_NODES[@]}"; do
    wait_until "$TIMEOUT" "kafka-$n on port $(ha_kafka_port "$n")" ha_kafka_ready "$n"
  done
  wait_until "$TIMEOUT" "all three brokers in the cluster's metadata" ha_kafka_all_registered
  kafka_topics "$(ha_kafka_brokers)" "$HA_LOG_DIR"
  wait_until 60 "three in-sync replicas of every partition" ha_kafka_replicated
}

ha_kafka_stop() {
  local n pid sig=${KURT_STACK_SIGNAL:-TERM}
  n=$(ha_kafka_node "$1") || die "no Kafka node '$1'"
  case $sig in TERM | KILL) ;; *) die "KURT_STACK_SIGNAL must be TERM or KILL, not '$sig'" ;; esac
  if ! pid=$(ha_kafka_pid "$n"); then
    rm -f "$HA_RUN_DIR/kafka-$n.pid"
    log "kafka-$n: not running"
    return 0
  fi
  if stop_pid "kafka-$n" "$pid" "$HA_RUN_DIR/kafka-$n.pid" "$TIMEOUT" "$sig" && [ "$sig" = TERM ]; then
    kafka_cds_keep ok
  else
    kafka_cds_keep discard
  fi
}

ha_kafka_start() {
  local n
  n=$(ha_kafka_node "$1") || die "no Kafka node '$1'"
  ha_kafka_launch "$n"
  wait_until "$TIMEOUT" "kafka-$n on port $(ha_kafka_port "$n")" ha_kafka_ready "$n"
  # Back to a healthy cluster: the node is a member again and has caught up.
  wait_until "$TIMEOUT" "all three brokers in the cluster's metadata" ha_kafka_all_registered
  wait_until "$TIMEOUT" "kafka-$n to catch up (three in-sync replicas everywhere)" \
    ha_kafka_replicated
}

ha_kafka_down() {
  local n
  for n in "${HA_KAFKA_NODES[@]}"; do KURT_STACK_SIGNAL=TERM ha_kafka_stop "kafka-$n"; done
}

ha_kafka_status() {
  local n port pid state rc=0
  for n in "${HA_KAFKA_NODES[@]}"; do
    port=$(ha_kafka_port "$n")
    state=stopped
    if pid=$(ha_kafka_pid "$n"); then
      if ha_kafka_answers "$n"; then state="running (pid $pid)"; else
        state="not answering (pid $pid)"
        rc=1
      fi
    else
      rc=1
    fi
    printf '%-11s 127.0.0.1:%-6s %s\n' "kafka-$n" "$port" "$state"
  done
  if [ $rc = 0 ] && ! ha_kafka_replicated; then
    printf '%-11s %-16s %s\n' kafka "" "a partition has fewer than three in-sync replicas"
    rc=1
  fi
  return $rc
}

ha_kafka_env() { echo "KURT_KAFKA_BROKERS=$(ha_kafka_brokers)"; }

ha_kafka_owns() { ha_kafka_node "$1" >/dev/null; }

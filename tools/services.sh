# Starting and stopping Kurt's own binaries on the local stack (sourced by tools/run and
# tools/stack; needs lib.sh). Each runs in the background with its log in $KURT_STATE_DIR/log/
# and its pid in $KURT_STATE_DIR/run/<instance>.pid; an instance is a binary, or in the --ha
# shape one of its replicas (kurt-links-1, kurt-links-2, ...).

# binary:gRPC port:HTTP port (readiness at http://127.0.0.1:<HTTP port>/readyz); the edge last.
KURT_BINARIES=(
  kurt-links:7101:9101
  kurt-accounts:7102:9102
  kurt-analytics:7103:9103
  kurt-reports:7104:9104
  kurt-report-worker:7105:9105
  kurt-notifications:7106:9106
  kurt-edge:-:$KURT_EDGE_PORT
)

# The --ha shape: KURT_HA_REPLICAS (default 2) replicas of every binary, replica r of the
# program whose default gRPC port is 71NN on gRPC port 254N(r) and HTTP port 255N(r) (links:
# 25411 and 25511, 25412 and 25512), edges on HTTP ports 25481, 25482, ... behind the balancer on
# 25480 (tools/run --ha).
KURT_HA_BALANCER_PORT=25480
KURT_HA_REPLICAS=${KURT_HA_REPLICAS:-2}

# ha_instances: instance:binary:gRPC port:HTTP port, a line each, services first, edges last.
ha_instances() {
  local entry bin grpc http r
  for entry in "${KURT_BINARIES[@]}"; do
    IFS=: read -r bin grpc http <<<"$entry"
    for ((r = 1; r <= KURT_HA_REPLICAS; r++)); do
      if [ "$grpc" = - ]; then
        echo "$bin-$r:$bin:-:$((KURT_HA_BALANCER_PORT + r))"
      else
        echo "$bin-$r:$bin:$((25400 + (grpc - 7100) * 10 + r)):$((25500 + (grpc - 7100) * 10 + r))"
      fi
    done
  done
}

# links_h2_port GRPC_PORT: the port of kurt-links' Resolve on its own HTTP/2 server (--h2_port)
# for the instance on GRPC_PORT: 7111 beside 7101 (services/common/mesh.h), gRPC port + 200 in the
# --ha shape (25611, 25612, ...).
links_h2_port() { if [ "$1" = 7101 ]; then echo 7111; else echo $(($1 + 200)); fi; }

# ha_upstreams: the edge's --upstream value in the --ha shape: every replica of each service, and
# of links' Resolve on their h2 ports.
ha_upstreams() {
  local line instance bin grpc http out="" service resolve=""
  declare -A addrs=()
  while IFS=: read -r instance bin grpc http; do
    [ "$grpc" != - ] || continue
    addrs[$bin]+="${addrs[$bin]:+,}127.0.0.1:$grpc"
    [ "$bin" != kurt-links ] || resolve+="${resolve:+,}127.0.0.1:$(links_h2_port "$grpc")"
  done < <(ha_instances)
  for bin in kurt-links kurt-accounts kurt-analytics kurt-reports kurt-notifications; do
    service=${bin#kurt-}
    service="kurt.$service.v1.${service^}Service"
    out+="${out:+,}$service=${addrs[$bin]}"
  done
  echo "$out,kurt.links.v1.LinksService/Resolve=$resolve"
}

_svc_pid() { # INSTANCE [BINARY]: the pid of our running INSTANCE (of BINARY), if any
  local pid
  pid=$(head -n1 "$KURT_STATE_DIR/run/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" && cmdline_has "$pid" "${2:-$1}" || return 1
  echo "$pid"
}

# services_stop: SIGTERM every Kurt binary we started, in either shape (graceful drain), SIGKILL
# after 15 s.
services_stop() {
  local file instance pid
  for file in "$KURT_STATE_DIR"/run/kurt-*.pid; do
    [ -e "$file" ] || continue
    instance=$(basename "$file" .pid)
    if pid=$(_svc_pid "$instance" "$(_svc_binary "$instance")"); then
      log "$instance: stopping (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 150); do pid_alive "$pid" || break; sleep 0.1; done
      [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  done
}

_svc_binary() { # INSTANCE: its binary (kurt-links-2 -> kurt-links)
  local entry
  for entry in "${KURT_BINARIES[@]}"; do
    [[ $1 == "${entry%%:*}" || $1 =~ ^${entry%%:*}-[0-9]+$ ]] && { echo "${entry%%:*}"; return; }
  done
  echo "$1"
}

# _svc_lines [--ha]: instance:binary:gRPC port:HTTP port of every instance of the shape.
_svc_lines() {
  local line
  if [ "${1:-}" = --ha ]; then
    ha_instances
  else
    for line in "${KURT_BINARIES[@]}"; do echo "${line%%:*}:$line"; done
  fi
}

# _svc_launch LINE: starts one instance in the background (its pid file and log as above).
_svc_launch() {
  local instance bin grpc http args=()
  IFS=: read -r instance bin grpc http <<<"$1"
  if [ "$grpc" != - ]; then
    args+=(--grpc_port="$grpc" --metrics_port="$http")
    [ "$bin" != kurt-links ] || args+=(--h2_port="$(links_h2_port "$grpc")")
  elif [ "$instance" = "$bin" ]; then # the edge of the single shape: links' Resolve on its h2 port
    args+=(--upstream=kurt.links.v1.LinksService/Resolve=127.0.0.1:$(links_h2_port 7101))
  else # an edge of the --ha shape
    # Served on while the balancer's checks (every 1 s, down after 2) take it out.
    # The balancer is a trusted proxy: its X-Request-ID, the same when it sends a request again
    # to the other edge, is the click's id there too (counted once).
    args+=(--edge_port="$http" --upstream="$(ha_upstreams)" --drain_delay=3s
      --trusted_proxies=127.0.0.1/32)
  fi
  # An edge keeps the hits of redirects that went out before kurt-links had them in a file of its
  # own, sent again when it starts after a kill.
  [ "$bin" = kurt-edge ] && args+=(--cached_hits_spool="$KURT_STATE_DIR/run/$instance.hits")
  # With KURT_TLS_CA and KURT_CERTS_DIR set (tools/run), each binary presents its own
  # certificate, $KURT_CERTS_DIR/<binary>.{crt,key} (tools/certs), on its gRPC connections;
  # every replica of a binary has the same identity.
  local tls=()
  [ -n "${KURT_TLS_CA:-}" ] &&
    tls=(KURT_TLS_CERT="$KURT_CERTS_DIR/$bin.crt" KURT_TLS_KEY="$KURT_CERTS_DIR/$bin.key")
  setsid env "${tls[@]}" "$KURT_BUILD_DIR/bin/$bin" "${args[@]}" \
    >>"$KURT_STATE_DIR/log/$instance.log" 2>&1 </dev/null &
  echo $! >"$KURT_STATE_DIR/run/$instance.pid"
}

# _svc_exit PID: how a process that this shell started, and that is gone, ended ("exited with
# status 1", "died of SIGSEGV"), from its exit status.
_svc_exit() {
  local rc=0 sig
  wait "$1" 2>/dev/null || rc=$?
  if [ "$rc" -eq 127 ] || [ "$rc" -lt 0 ]; then echo exited # not a child of this shell
  elif [ "$rc" -gt 128 ] && sig=$(kill -l $((rc - 128)) 2>/dev/null); then echo "died of SIG$sig"
  else echo "exited with status $rc"; fi
}

# _svc_wait_ready LINE: waits until the instance (just started by this shell) answers /readyz;
# dies if it ends or takes 60 s.
_svc_wait_ready() {
  local instance bin grpc http pid deadline=$((SECONDS + 60))
  IFS=: read -r instance bin grpc http <<<"$1"
  pid=$(head -n1 "$KURT_STATE_DIR/run/$instance.pid")
  until curl -sf -o /dev/null "http://127.0.0.1:$http/readyz"; do
    # The process, not _svc_pid: while it execs (setsid, then env, then the binary) its command
    # line reads empty, and a live instance looked exited (it failed a CI run).
    pid_alive "$pid" ||
      die "$instance $(_svc_exit "$pid"); its log: $KURT_STATE_DIR/log/$instance.log ($(tail -n 3 "$KURT_STATE_DIR/log/$instance.log"))"
    [ $SECONDS -lt $deadline ] || die "$instance not ready within 60 s; see $KURT_STATE_DIR/log/$instance.log"
    sleep 0.2
  done
  log "$instance: ready (http://127.0.0.1:$http/readyz)"
}

# services_start [--ha]: (re)starts every binary that the build produced (in the --ha shape, each
# one's replicas), then waits for readiness. The environment (KURT_* twins of the flags) must be
# exported by the caller; it is kept in $KURT_STATE_DIR/run/services.env (owner only) for
# tools/service, which restarts one instance the same way.
services_start() {
  local line bin phase started
  mkdir -p "$KURT_STATE_DIR/run" "$KURT_STATE_DIR/log"
  services_stop
  (umask 077 && export -p | grep '^declare -x KURT_' >"$KURT_STATE_DIR/run/services.env")
  echo "KURT_SHAPE=${1:-default}" >>"$KURT_STATE_DIR/run/services.env"
  # The services first, the edges once those are ready: an edge that starts beside them finds
  # them not serving in its first health check and answers their routes 503 until a later
  # check (and its channels' reconnect backoff) finds them up, after tools/run said it runs.
  for phase in services edges; do
    started=()
    while IFS= read -r line; do
      bin=$(cut -d: -f2 <<<"$line")
      [ -x "$KURT_BUILD_DIR/bin/$bin" ] || continue
      if [ "$bin" = kurt-edge ]; then [ $phase = edges ]; else [ $phase = services ]; fi || continue
      _svc_launch "$line"
      started+=("$line")
    done < <(_svc_lines "${1:-}")
    for line in "${started[@]}"; do _svc_wait_ready "$line"; done
  done
}

# The balancer in front of the edges in the --ha shape, standing in for the ingress: HAProxy,
# least connections, each edge health-checked on /readyz; a request whose connection to an edge
# fails is sent to the other. Its keep-alive to the edges is shorter than theirs, so it never
# reuses a connection an edge is closing.
edge_balancer_start() {
  local dir=$KURT_STATE_DIR/ha/edge-balancer instance bin grpc http servers=""
  apt_install haproxy
  mkdir -p "$dir" "$KURT_STATE_DIR/run" "$KURT_STATE_DIR/log"
  edge_balancer_stop
  while IFS=: read -r instance bin grpc http; do
    [ "$bin" = kurt-edge ] || continue
    servers+="  server $instance 127.0.0.1:$http check"$'\n'
  done < <(ha_instances)
  cat >"$dir/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  option redispatch
  retries 2
  # A request the edge never answered goes to the other edge; only GETs and HEADs after they
  # were sent (a create might have been done).
  retry-on conn-failure empty-response response-timeout
  timeout connect 1s
  timeout client 75s
  timeout server 60s
  timeout http-keep-alive 30s
  timeout tunnel 1h
frontend kurt-api
  bind 127.0.0.1:$KURT_HA_BALANCER_PORT
  http-request disable-l7-retry if !METH_GET !METH_HEAD
  # Each request's id, replacing the client's: sent again with the request to the other edge.
  unique-id-format %[uuid()]
  http-request set-header X-Request-ID %[unique-id]
  option forwardfor
  default_backend kurt-edges
backend kurt-edges
  balance leastconn
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 1s fall 2 rise 2
$servers
CFG
  haproxy -c -q -f "$dir/haproxy.cfg" || die "the edge balancer's configuration is refused"
  setsid haproxy -W -f "$dir/haproxy.cfg" -p "$KURT_STATE_DIR/run/edge-balancer.pid" \
    >>"$KURT_STATE_DIR/log/edge-balancer.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + 30))
  until curl -sf -o /dev/null "http://127.0.0.1:$KURT_HA_BALANCER_PORT/readyz"; do
    [ $SECONDS -lt $deadline ] ||
      die "the edge balancer does not answer; see $KURT_STATE_DIR/log/edge-balancer.log"
    sleep 0.2
  done
  log "edge-balancer: ready (http://127.0.0.1:$KURT_HA_BALANCER_PORT)"
}

edge_balancer_stop() {
  local pid
  if pid=$(_svc_pid edge-balancer haproxy); then
    log "edge-balancer: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  rm -f "$KURT_STATE_DIR/run/edge-balancer.pid"
}

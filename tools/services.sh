# Starting and stopping Kurt's own binaries on the local stack (sourced by tools/run and
# tools/stack; needs lib.sh). Each runs in the background with its log in $KURT_STATE_DIR/log/
# and its pid in $KURT_STATE_DIR/run/<binary>.pid.

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

_svc_pid() { # BINARY: the pid of our running BINARY, if any
  local pid
  pid=$(head -n1 "$KURT_STATE_DIR/run/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1" || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

# services_stop: SIGTERM every binary we started (graceful drain), SIGKILL after 15 s.
services_stop() {
  local entry bin pid
  for entry in "${KURT_BINARIES[@]}"; do
    bin=${entry%%:*}
    if pid=$(_svc_pid "$bin"); then
      log "$bin: stopping (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 150); do [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break; sleep 0.1; done
      [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$KURT_STATE_DIR/run/$bin.pid"
  done
}

# services_start: (re)starts every binary that the build produced, then waits for readiness.
# The environment (KURT_* twins of the flags) must be exported by the caller.
services_start() {
  local entry bin grpc http pid started=()
  mkdir -p "$KURT_STATE_DIR/run" "$KURT_STATE_DIR/log"
  services_stop
  for entry in "${KURT_BINARIES[@]}"; do
    IFS=: read -r bin grpc http <<<"$entry"
    [ -x "$KURT_BUILD_DIR/bin/$bin" ] || continue
    local args=()
    [ "$grpc" != - ] && args+=(--grpc_port="$grpc" --metrics_port="$http")
    setsid "$KURT_BUILD_DIR/bin/$bin" "${args[@]}" \
      >>"$KURT_STATE_DIR/log/$bin.log" 2>&1 </dev/null &
    echo $! >"$KURT_STATE_DIR/run/$bin.pid"
    started+=("$bin:$http")
  done
  for entry in "${started[@]}"; do
    bin=${entry%%:*}
    http=${entry##*:}
    local deadline=$((SECONDS + 60))
    until curl -sf -o /dev/null "http://127.0.0.1:$http/readyz"; do
      _svc_pid "$bin" >/dev/null ||
        die "$bin exited; its log: $KURT_STATE_DIR/log/$bin.log ($(tail -n 3 "$KURT_STATE_DIR/log/$bin.log"))"
      [ $SECONDS -lt $deadline ] || die "$bin not ready within 60 s; see $KURT_STATE_DIR/log/$bin.log"
      sleep 0.2
    done
    log "$bin: ready (http://127.0.0.1:$http/readyz)"
  done
}

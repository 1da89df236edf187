# shellcheck shell=bash
# The --ha stack's object storage (sourced by tools/stack): SeaweedFS with its S3 gateway, where
# report artifacts live (the workers upload them, every kurt-reports replica streams them).
# One `weed server` process runs SeaweedFS's master, volume server, filer and S3 gateway:
#
#   s3   S3 127.0.0.1:25300; master 25301, volume 25302, filer 25303 (their gRPC ports +10)
#
# It is built from the Go module proxy through tools/seaweedfs/go.mod (SeaweedFS's own go.mod has
# replace lines, which `go install` refuses), once per version, into $KURT_TOOLS_DIR. The S3 keys
# are generated on the first start and kept in $HA_DIR/s3/credentials (mode 600); the gateway
# knows them from $HA_DIR/s3/identities.json; the bucket is created once the gateway answers.
# Data: $HA_DIR/s3/data (kept across restarts); log: $HA_LOG_DIR/s3.log.
#
# tools/stack stop --ha s3 sends SIGTERM (KURT_STACK_SIGNAL=KILL: SIGKILL); start brings it back.

HA_COMPONENTS+=(s3)

HA_S3_DIR=$HA_DIR/s3
HA_S3_PORT=${KURT_HA_S3_PORT:-25300}
HA_S3_MASTER_PORT=$((HA_S3_PORT + 1))
HA_S3_VOLUME_PORT=$((HA_S3_PORT + 2))
HA_S3_FILER_PORT=$((HA_S3_PORT + 3))
HA_S3_BUCKET=kurt-reports
HA_S3_REGION=us-east-1

# The SeaweedFS version tools/seaweedfs/go.mod requires.
ha_s3_version() {
  awk '$1 == "require" && $2 == "github.com/seaweedfs/seaweedfs" { print $3 }' \
    "$KURT_ROOT/tools/seaweedfs/go.mod"
}

# ha_s3_weed: prints the path of the weed binary, building it the first time (about 6 minutes).
ha_s3_weed() {
  local version dir
  version=$(ha_s3_version)
  [ -n "$version" ] || die "s3: no SeaweedFS version in tools/seaweedfs/go.mod"
  dir=$KURT_TOOLS_DIR/go/weed@$version
  if [ ! -x "$dir/weed" ]; then
    # tools/seaweedfs/go.mod's `go` line; Debian 12's own Go (1.19) is too old.
    ensure_go 26 "s3: building SeaweedFS"
    log "s3: building SeaweedFS $version from the Go module proxy (tools/seaweedfs; takes minutes)"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    (cd "$KURT_ROOT/tools/seaweedfs" &&
      GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$dir.tmp/weed" \
        github.com/seaweedfs/seaweedfs/weed) >&2 || die "s3: building SeaweedFS failed"
    mkdir -p "$dir" && mv "$dir.tmp/weed" "$dir/weed"
    rm -rf "$dir.tmp"
  fi
  printf '%s\n' "$dir/weed"
}

# ha_s3_credentials: generates the access and secret keys once; prints "ACCESS SECRET".
ha_s3_credentials() {
  local f=$HA_S3_DIR/credentials
  if [ ! -s "$f" ]; then
    mkdir -p "$HA_S3_DIR"
    (
      umask 077
      printf 'kurt%s %s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)" \
        "$(head -c 30 /dev/urandom | base64 | tr -d '\n/+=' | cut -c1-40)" >"$f.tmp"
    )
    mv "$f.tmp" "$f"
  fi
  cat "$f"
}

ha_s3_pid() {
  local pid
  pid=$(head -n1 "$HA_RUN_DIR/s3.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" && cmdline_has "$pid" "$HA_S3_DIR/data" || return 1
  echo "$pid"
}

# ha_s3_curl ARGS...: a request to the gateway signed with our keys (libcurl's own SigV4).
ha_s3_curl() {
  local creds
  creds=$(ha_s3_credentials)
  curl -sS --max-time 10 --aws-sigv4 "aws:amz:$HA_S3_REGION:s3" --user "${creds% *}:${creds#* }" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# ha_s3_bucket_ok: HEAD of the bucket answers 200 (the gateway serves it, our keys work).
ha_s3_bucket_ok() {
  [ "$(ha_s3_curl -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$HA_S3_PORT/$HA_S3_BUCKET" \
    2>/dev/null)" = 200 ]
}

# ha_s3_round_trip: an object written reads back. After a restart the gateway serves the bucket
# seconds before its volume server has registered again, and reads of old objects fail until then.
ha_s3_round_trip() {
  local url=http://127.0.0.1:$HA_S3_PORT/$HA_S3_BUCKET/.kurt-stack-probe value
  value=$(date +%s%N)
  ha_s3_curl -o /dev/null -X PUT --data-binary "$value" "$url" 2>/dev/null &&
    [ "$(ha_s3_curl "$url" 2>/dev/null)" = "$value" ]
}

# ha_s3_answers: the gateway answers HTTP at all (an anonymous request gets its 403).
ha_s3_answers() {
  local code
  code=$(curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://127.0.0.1:$HA_S3_PORT/") || true
  [ -n "$code" ] && [ "$code" != 000 ]
}

ha_s3_ready() {
  # The process just started: whether it lives, not what its command line says (empty while it
  # execs, which read as "exited").
  if ! pid_alive "$(head -n1 "$HA_RUN_DIR/s3.pid" 2>/dev/null)"; then
    tail -n 30 "$HA_LOG_DIR/s3.log" >&2 2>/dev/null || true
    die "s3 exited while starting (log: $HA_LOG_DIR/s3.log)"
  fi
  ha_s3_answers
}

ha_s3_create_bucket() {
  local out
  ha_s3_bucket_ok && return 0
  log "s3: creating bucket $HA_S3_BUCKET"
  out=$(ha_s3_curl -X PUT -w '\n%{http_code}' "http://127.0.0.1:$HA_S3_PORT/$HA_S3_BUCKET") || true
  case ${out##*$'\n'} in
    200 | 409) ;;
    *) die "s3: creating bucket $HA_S3_BUCKET failed: $out" ;;
  esac
}

ha_s3_start() {
  local weed creds
  if ha_s3_pid >/dev/null; then
    wait_until "$TIMEOUT" "s3 on port $HA_S3_PORT" ha_s3_ready
    wait_until "$TIMEOUT" "s3's bucket $HA_S3_BUCKET" ha_s3_bucket_ok
    wait_until "$TIMEOUT" "s3 to store and read an object" ha_s3_round_trip
    return 0
  fi
  weed=$(ha_s3_weed)
  port_free_or_die s3 "$HA_S3_PORT" "$HA_S3_MASTER_PORT" "$HA_S3_VOLUME_PORT" "$HA_S3_FILER_PORT" \
    $((HA_S3_PORT + 10)) $((HA_S3_MASTER_PORT + 10)) $((HA_S3_VOLUME_PORT + 10)) \
    $((HA_S3_FILER_PORT + 10))
  creds=$(ha_s3_credentials)
  mkdir -p "$HA_S3_DIR/data" "$HA_S3_DIR/glog" "$HA_RUN_DIR" "$HA_LOG_DIR"
  (
    umask 077
    printf '{"identities":[{"name":"kurt","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
      "${creds% *}" "${creds#* }" >"$HA_S3_DIR/identities.json"
  )
  log "s3: starting SeaweedFS on 127.0.0.1:$HA_S3_PORT (master $HA_S3_MASTER_PORT)"
  rm -f "$HA_RUN_DIR/s3.pid"
  # Its own session (setsid), so a signal to our process group does not reach it. The Iceberg
  # and Lance catalogs are off (they would take ports of their own).
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$HA_RUN_DIR/s3.pid" \
    "$weed" -logdir="$HA_S3_DIR/glog" server -dir="$HA_S3_DIR/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$HA_S3_MASTER_PORT" -master.port.grpc=$((HA_S3_MASTER_PORT + 10)) \
    -master.volumeSizeLimitMB=1024 -volume.max=0 \
    -volume.port="$HA_S3_VOLUME_PORT" -volume.port.grpc=$((HA_S3_VOLUME_PORT + 10)) \
    -volume.preStopSeconds=1 \
    -filer -filer.port="$HA_S3_FILER_PORT" -filer.port.grpc=$((HA_S3_FILER_PORT + 10)) \
    -s3 -s3.port="$HA_S3_PORT" -s3.port.grpc=$((HA_S3_PORT + 10)) -s3.port.iceberg=0 \
    -s3.port.lance=0 -s3.config="$HA_S3_DIR/identities.json" \
    </dev/null >>"$HA_LOG_DIR/s3.log" 2>&1 &
  wait_until 10 "s3's pid file" test -s "$HA_RUN_DIR/s3.pid"
  wait_until "$TIMEOUT" "s3 on port $HA_S3_PORT" ha_s3_ready
  wait_until "$TIMEOUT" "s3 to accept a bucket" ha_s3_create_bucket_quietly
  wait_until "$TIMEOUT" "s3's bucket $HA_S3_BUCKET" ha_s3_bucket_ok
  wait_until "$TIMEOUT" "s3 to store and read an object" ha_s3_round_trip
}

# ha_s3_create_bucket_quietly: the gateway may answer before its filer is ready; try again.
ha_s3_create_bucket_quietly() { (ha_s3_create_bucket) 2>/dev/null; }

ha_s3_stop() {
  local pid sig=${KURT_STACK_SIGNAL:-TERM}
  if ! pid=$(ha_s3_pid); then
    rm -f "$HA_RUN_DIR/s3.pid"
    log "s3: not running"
    return 0
  fi
  stop_pid s3 "$pid" "$HA_RUN_DIR/s3.pid" "$TIMEOUT" "$sig" || true
}

ha_s3_up() { ha_s3_start s3; }
ha_s3_down() { ha_s3_stop s3; }
ha_s3_owns() { [ "$1" = s3 ]; }

ha_s3_status() {
  local pid state=stopped ok=1
  if pid=$(ha_s3_pid); then
    if ha_s3_bucket_ok; then
      state="running (pid $pid), bucket $HA_S3_BUCKET"
      ok=0
    else
      state="not serving bucket $HA_S3_BUCKET (pid $pid)"
    fi
  fi
  printf '%-11s 127.0.0.1:%-6s %s\n' s3 "$HA_S3_PORT" "$state"
  return $ok
}

ha_s3_env() {
  local creds
  creds=$(ha_s3_credentials)
  cat <<EOF
KURT_S3_URL=http://127.0.0.1:$HA_S3_PORT
KURT_S3_BUCKET=$HA_S3_BUCKET
KURT_S3_REGION=$HA_S3_REGION
KURT_S3_ACCESS_KEY=${creds% *}
KURT_S3_SECRET_KEY=${creds#* }
EOF
}

#!/usr/bin/env bash
# tools/services.sh's wait for an instance it started (what tools/run and tools/service do):
# - an instance whose command line does not name its binary (a process's command line reads empty
#   while it execs: setsid, then env, then the binary) is waited for until ready, not reported as
#   exited (a CI run of tools/run --ha failed on a live edge that way);
# - one that crashes is reported with its signal, one that exits with its status.
# Usage: tests/tools/services_wait_test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tools/lib.sh" # pid_alive
dir=$(mktemp -d)
trap 'kill $(cat "$dir"/state/run/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/state"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Ready after 1 s, on --metrics_port, under a command line without "kurt-links" from the start.
cat >"$dir/bin/kurt-links" <<'SH'
#!/usr/bin/env bash
for a in "$@"; do case $a in --metrics_port=*) port=${a#*=} ;; esac; done
exec -a renamed python3 -c '
import http.server, sys, time
time.sleep(1)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()' "$port"
SH
chmod +x "$dir/bin/kurt-links"

fail() { echo "FAIL: $*" >&2; echo "$out" >&2; exit 1; }
wait_for() { # BODY OF THE FAKE kurt-links (or "" for the one above): tools/services.sh's launch and wait
  [ -z "$1" ] || printf '#!/usr/bin/env bash\n%s\n' "$1" >"$dir/bin/kurt-links"
  set +e
  out=$(KURT_BUILD_DIR=$dir KURT_STATE_DIR=$dir/state bash -c '
    set -euo pipefail # as tools/run
    . "$1/tools/lib.sh"
    . "$1/tools/services.sh"
    mkdir -p "$KURT_STATE_DIR/run" "$KURT_STATE_DIR/log"
    _svc_launch "kurt-links-1:kurt-links:1:$2"
    _svc_wait_ready "kurt-links-1:kurt-links:1:$2"' _ "$root" "$port" 2>&1)
  rc=$?
  set -e
}

wait_for ""
[ "$rc" = 0 ] || fail "a live instance whose command line lacks its name: exit status $rc"
grep -q "kurt-links-1: ready" <<<"$out" || fail "not reported ready"
pid=$(cat "$dir/state/run/kurt-links-1.pid")
kill "$pid"
for _ in $(seq 200); do # until it is gone or a zombie (its port free for the next case)
  pid_alive "$pid" || break
  sleep 0.05
done

wait_for 'kill -SEGV $$'
[ "$rc" = 1 ] || fail "a crashed instance: exit status $rc, not 1"
grep -q "kurt-links-1 died of SIGSEGV" <<<"$out" || fail "the crash's signal not named"

wait_for 'echo "cannot start: a reason" >&2; exit 3'
[ "$rc" = 1 ] || fail "an instance that exited: exit status $rc, not 1"
grep -q "kurt-links-1 exited with status 3" <<<"$out" || fail "the exit status not named"
grep -q "cannot start: a reason" <<<"$out" || fail "its log's last lines not shown"

wait_for 'exit 200'
grep -q "kurt-links-1 exited with status 200" <<<"$out" || fail "a status above 128 taken for a signal"
echo "ok"

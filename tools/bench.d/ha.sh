#!/usr/bin/env bash
# tools/bench ha: what a second replica of every stateless binary buys in the --ha shape
# (tools/run --ha: PostgreSQL under Patroni behind HAProxy and PgBouncer, Redis with Sentinels,
# three Kafka brokers, S3; the edges behind HAProxy). Kurt runs with one replica of each binary,
# then two, alternating, KURT_BENCH_RUNS times each. Under each, wrk through the balancer:
# redirects of KURT_BENCH_HOT_CODES links (answered from the edges' caches; each 302 waits for its
# click in Kafka) and link creates (a PostgreSQL insert through PgBouncer each).
# On two cores every replica shares the same two cores with the whole stack: a second replica
# can only win back what one process cannot overlap (its waits on Kafka, PostgreSQL and locks).
# Writes $KURT_STATE_DIR/bench/ha.json (ratios redirect_rps_two_vs_one, create_rps_two_vs_one:
# medians of the adjacent pairs' ratios). Starts the --ha stack if it is not up, and stops what it
# started. Knobs: KURT_BENCH_SECONDS (5), KURT_BENCH_RUNS (3), KURT_BENCH_CONNECTIONS (32),
# KURT_BENCH_HOT_CODES (20); KURT_SKIP_BUILD=1 takes the binaries as built.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

. "$KURT_ROOT/tools/bench.d/lib/knobs.sh"
bench_knobs 32 20
bench_dir=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$bench_dir"
apt_install wrk curl python3

stack_started=false
if ! "$KURT_ROOT/tools/stack" status --ha >/dev/null 2>&1; then
  stack_started=true
  "$KURT_ROOT/tools/stack" up --ha >/dev/null
fi
cleanup() {
  (
    . "$KURT_ROOT/tools/services.sh"
    edge_balancer_stop
    services_stop
  ) >/dev/null 2>&1 || true
  if $stack_started; then "$KURT_ROOT/tools/stack" down --ha >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The load comes from one address and one account: throttling is not the subject.
export KURT_RATE_PER_ADDRESS=0 KURT_RATE_PER_ACCOUNT=0
[ "${KURT_SKIP_BUILD:-}" = 1 ] || "$KURT_ROOT/tools/build"
export KURT_SKIP_BUILD=1
run_kurt() { # REPLICAS: Kurt in the --ha shape with that many replicas of each binary
  KURT_HA_REPLICAS=$1 "$KURT_ROOT/tools/run" --ha --detach >/dev/null
}
env_value() { sed -n "s/^$1=//p" "$KURT_STATE_DIR/env"; }

run_kurt 1
url=$(env_value KURT_EDGE_URL)
api() { # METHOD PATH [BODY] [TOKEN]: the JSON answer; dies on a non-2xx
  curl -sf -X "$1" "$url$2" -H "Authorization: Bearer ${4:-$key}" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} || die "$1 $2 failed"
}
key=$(api POST /v1/accounts '{"name": "bench-ha"}' "$(env_value KURT_ADMIN_TOKEN)" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["secretKey"])')
codes=""
for i in $(seq "$hot"); do
  code=$(api POST /v1/links "{\"targetUrl\": \"https://example.com/bench-ha/$i\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["code"])')
  codes+="$code "
done

cat >"$work/redirect.lua" <<'LUA'
local codes = {}
for c in string.gmatch(os.getenv("BENCH_CODES"), "%S+") do codes[#codes + 1] = c end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/" .. codes[i % #codes + 1])
end
LUA
cat >"$work/create.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/v1/links"
wrk.body = '{"targetUrl": "https://example.com/bench-ha/created"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
LUA

load() { # LOAD(redirect|create): "req/s non_2xx_3xx" of one wrk run through the balancer
  local text
  text=$(BENCH_CODES=$codes BENCH_KEY=$key wrk -t1 -c"$connections" -d"${seconds}s" \
    -s "$work/$1.lua" "$url" 2>&1)
  awk '/^Requests\/sec:/ { rps = $2 } /Non-2xx or 3xx responses:/ { bad = $5 }
       END { printf "%.0f %d\n", rps, bad + 0 }' <<<"$text"
}

results=$work/results
: >"$results"
for ((r = 1; r <= runs; r++)); do
  # Adjacent pairs, the order alternating: this machine's speed drifts within minutes.
  if ((r % 2)); then order="1 2"; else order="2 1"; fi
  for replicas in $order; do
    if [ "$r" != 1 ] || [ "$replicas" != 1 ]; then run_kurt "$replicas"; fi
    for what in redirect create; do
      read -r rps bad < <(load "$what")
      echo "$r $replicas $what $rps $bad" >>"$results"
      log "run $r, $replicas replica(s): $what $rps req/s ($bad not 2xx/3xx)"
    done
  done
done

python3 - "$results" "$bench_dir/ha.json" "$connections" "$seconds" <<'PY'
import json, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
by = {}
for run, replicas, what, rps, bad in rows:
    by[(int(run), int(replicas), what)] = (float(rps), int(bad))
runs = sorted({k[0] for k in by})
ratios, table = {}, []
for what in ("redirect", "create"):
    pairs = [by[(r, 2, what)][0] / by[(r, 1, what)][0] for r in runs if by[(r, 1, what)][0] > 0]
    one = statistics.median(by[(r, 1, what)][0] for r in runs)
    two = statistics.median(by[(r, 2, what)][0] for r in runs)
    bad = sum(by[(r, n, what)][1] for r in runs for n in (1, 2))
    ratios[f"{what}_rps_two_vs_one"] = round(statistics.median(pairs), 3)
    table.append((what, one, two, ratios[f"{what}_rps_two_vs_one"], bad))
print(f"{'load':<10} {'1 replica req/s':>16} {'2 replicas req/s':>17} {'ratio':>7} {'failed':>7}")
for what, one, two, ratio, bad in table:
    print(f"{what:<10} {one:>16.0f} {two:>17.0f} {ratio:>7.2f} {bad:>7}")
json.dump({"connections": int(sys.argv[3]), "seconds": int(sys.argv[4]), "runs": len(runs),
           "results": [dict(zip(("run", "replicas", "load", "rps", "failed"), row)) for row in rows],
           "ratios": ratios}, open(sys.argv[2], "w"), indent=2)
PY
log "wrote $bench_dir/ha.json"
bad=$(awk '{ s += $5 } END { print s + 0 }' "$results")
[ "$bad" = 0 ] || die "$bad requests failed (not 2xx or 3xx) during the benchmark"

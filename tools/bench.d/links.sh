#!/usr/bin/env bash
# tools/bench links: Resolve (the redirect's RPC) under load for a hot set of codes, driven by
# ghz, beside redis-benchmark GET against the same Redis, in one run. Beside throughput it reports
# what each Resolve costs kurt-links in CPU (resolve_cpu_us: its process's user + system time
# during the ghz window, from /proc, per completed call; target: at most 50 µs) and, for context,
# the Redis server's CPU per call over the same window (from INFO cpu; it includes anything else
# that uses that Redis meanwhile). Resolve is measured where the edge calls it, on kurt-links' h2
# port (Kurt's own HTTP/2 server, platform/grpc/h2_server.h), and in an adjacent window of the
# same load on its gRPC port (gRPC's server), for comparison: resolve_grpc_cpu_us.
# Writes $KURT_STATE_DIR/bench/links.json (ratio resolve_rps_vs_redis_get; resolve.cpu_us_per_call;
# resolve_grpc.cpu_us_per_call).
# Uses the running stack when KURT_PG_PRIMARY_URL is set, else starts it; KURT_SKIP_BUILD=1 takes
# the binaries as built. Knobs: KURT_BENCH_SECONDS (10), KURT_BENCH_CONCURRENCY (50),
# KURT_BENCH_HOT_CODES (100).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$KURT_ROOT/tools/bench.d/lib/knobs.sh"

seconds=${KURT_BENCH_SECONDS:-10}
concurrency=${KURT_BENCH_CONCURRENCY:-50}
hot=${KURT_BENCH_HOT_CODES:-100}
grpc_port=17101
h2_port=17121
http_port=19101
topic=kurt.bench.clicks.v1
cpu_target_us=50
out=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$out"

apt_install curl postgresql-client redis-tools
bench_stack kurt-links kurt-migrate
redis_port=${KURT_REDIS_URL##*:}
redis_port=${redis_port%%/*}
ghz=$(go_tool ghz github.com/bojand/ghz/cmd/ghz@v0.93.0)
"$KURT_BUILD_DIR/bin/kurt-migrate" >/dev/null 2>&1

. "$KURT_ROOT/tools/bench.d/lib/servers.sh"
bench_seed bench bench "$hot" "$topic"

"$KURT_BUILD_DIR/bin/kurt-links" --grpc_port=$grpc_port --metrics_port=$http_port --h2_port=$h2_port \
  --clicks_topic=$topic --log_level=warn >"$work/links.log" 2>&1 &
links_pid=$!
pids+=("$links_pid")
wait_http "http://127.0.0.1:$http_port/readyz"

python3 -c "import json; print(json.dumps([{'code': f'bench{i}'} for i in range(1, $hot + 1)]))" \
  >"$work/codes.json"
# The h2 port serves no reflection: ghz takes the descriptors from the build.
resolve_call=(--insecure --protoset "$KURT_BUILD_DIR/proto/kurt_descriptor_set.pb"
  --call kurt.links.v1.LinksService/Resolve --data-file "$work/codes.json")
# Warm the cache: every hot code once, through each port.
for port in $grpc_port $h2_port; do
  "$ghz" "${resolve_call[@]}" -n "$hot" -c 1 127.0.0.1:$port >/dev/null
done

process_cpu_ticks() { # PID: its user + system time so far, in clock ticks (/proc/PID/stat)
  # The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
  sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
redis_cpu_seconds() { # the Redis server's used_cpu_sys + used_cpu_user so far
  redis-cli -p "$redis_port" INFO cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f\n", s }'
}

# resolve_window PORT NAME: the load on PORT; ghz's report in NAME.json, the CPU counters before
# and after it in NAME.cpu.
resolve_window() {
  local links_before redis_before
  links_before=$(process_cpu_ticks "$links_pid")
  redis_before=$(redis_cpu_seconds)
  "$ghz" "${resolve_call[@]}" -c "$concurrency" --connections=4 -z "${seconds}s" -O json \
    127.0.0.1:$1 >"$work/$2.json"
  echo "$links_before $(process_cpu_ticks "$links_pid") $redis_before $(redis_cpu_seconds)" \
    >"$work/$2.cpu"
}
echo "Resolve on the gRPC port, then the h2 port: ${seconds}s each, $concurrency concurrent," \
  "$hot hot codes (ghz) ..." >&2
resolve_window $grpc_port grpc
resolve_window $h2_port h2
echo "Redis GET: $concurrency clients (redis-benchmark) ..." >&2
redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get -c "$concurrency" -n 1000000 --csv \
  >"$work/redis.csv"

python3 - "$work" "$work/redis.csv" "$out/links.json" "$seconds" "$concurrency" "$hot" \
  "$(getconf CLK_TCK)" "$cpu_target_us" <<'PY'
import csv, json, sys
work, redis_file, out_file, seconds, concurrency, hot, clk_tck, cpu_target_us = sys.argv[1:]


def window(name):
    g = json.load(open(f"{work}/{name}.json"))
    links_before, links_after, redis_before, redis_after = open(f"{work}/{name}.cpu").read().split()
    lat = {int(d["percentage"]): d["latency"] / 1e6 for d in g.get("latencyDistribution") or []}
    ok = g.get("statusCodeDistribution", {}).get("OK", 0)
    errors = sum(v for k, v in g.get("statusCodeDistribution", {}).items() if k != "OK")
    # ghz cancels the calls still in flight when the duration ends ("... is closing").
    cut = sum(n for e, n in (g.get("errorDistribution") or {}).items() if "closing" in e)
    errors -= cut
    completed = max(ok + errors, 1)
    links_cpu_s = (int(links_after) - int(links_before)) / int(clk_tck)
    redis_cpu_s = float(redis_after) - float(redis_before)
    for err, n in (g.get("errorDistribution") or {}).items():
        if "closing" not in err:
            print(f"  {name}: {n} x {err}")
    return {"rps": round(g["rps"]), "p50_ms": round(lat.get(50, 0), 3),
            "p99_ms": round(lat.get(99, 0), 3), "ok": ok, "errors": errors, "cut": cut,
            "completed": completed, "cpu_seconds": round(links_cpu_s, 2),
            "cpu_us_per_call": round(links_cpu_s * 1e6 / completed, 1),
            "redis_cpu_us_per_call": round(redis_cpu_s * 1e6 / completed, 1)}


resolve, resolve_grpc = window("h2"), window("grpc")
rows = list(csv.DictReader(open(redis_file)))
r = next(row for row in rows if row["test"].startswith("GET"))
redis = {"rps": round(float(r["rps"])), "p50_ms": float(r["p50_latency_ms"]),
         "p99_ms": float(r["p99_latency_ms"])}
ratio = resolve["rps"] / redis["rps"]
print(f"{'':32} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'µs CPU/call':>12}")
for label, w in (("links Resolve, h2 port (ghz)", resolve),
                 ("links Resolve, gRPC port (ghz)", resolve_grpc)):
    print(f"{label:32} {w['rps']:>10} {w['p50_ms']:>8} {w['p99_ms']:>8} {w['cpu_us_per_call']:>12}")
print(f"{'redis GET (redis-benchmark)':32} {redis['rps']:>10} {redis['p50_ms']:>8} {redis['p99_ms']:>8}")
print(f"resolve_rps_vs_redis_get = {ratio:.3f}   (Resolve errors: {resolve['errors']}; "
      f"{resolve['cut']} in flight when the run ended)")
print(f"resolve_cpu_us = {resolve['cpu_us_per_call']:.1f}   (target: at most {cpu_target_us}; "
      f"kurt-links {resolve['cpu_seconds']:.2f} s CPU for {resolve['completed']} calls on its h2 "
      f"port; Redis server {resolve['redis_cpu_us_per_call']:.1f} µs per call)")
print(f"resolve_grpc_cpu_us = {resolve_grpc['cpu_us_per_call']:.1f}   (the same load on the gRPC "
      f"port, the window before; h2 / gRPC = "
      f"{resolve['cpu_us_per_call'] / max(resolve_grpc['cpu_us_per_call'], 0.1):.2f})")
json.dump({"benchmark": "links", "seconds": int(seconds), "concurrency": int(concurrency),
           "hot_codes": int(hot), "resolve": resolve, "resolve_grpc": resolve_grpc,
           "redis_get": redis, "resolve_cpu_us": resolve["cpu_us_per_call"],
           "resolve_grpc_cpu_us": resolve_grpc["cpu_us_per_call"],
           "resolve_cpu_us_target": int(cpu_target_us),
           "ratios": {"resolve_rps_vs_redis_get": round(ratio, 4),
                      "resolve_h2_cpu_vs_grpc": round(
                          resolve["cpu_us_per_call"] / max(resolve_grpc["cpu_us_per_call"], 0.1),
                          4)}},
          open(out_file, "w"), indent=2)
PY

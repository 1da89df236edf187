#!/usr/bin/env bash
# tools/bench links: Resolve (the redirect's RPC) under load for a hot set of codes, driven by
# ghz, beside redis-benchmark GET against the same Redis, in one run.
# Writes $KURT_STATE_DIR/bench/links.json (ratio resolve_rps_vs_redis_get).
# Knobs: KURT_BENCH_SECONDS (10), KURT_BENCH_CONCURRENCY (50), KURT_BENCH_HOT_CODES (100).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

seconds=${KURT_BENCH_SECONDS:-10}
concurrency=${KURT_BENCH_CONCURRENCY:-50}
hot=${KURT_BENCH_HOT_CODES:-100}
grpc_port=17101
http_port=19101
topic=kurt.bench.clicks.v1
out=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$out"

"$KURT_ROOT/tools/build" kurt-links kurt-migrate
"$KURT_ROOT/tools/stack" up >/dev/null
set -a
. "$KURT_STATE_DIR/stack.env"
set +a
ghz=$(go_tool ghz github.com/bojand/ghz/cmd/ghz@v0.93.0)
"$KURT_BUILD_DIR/bin/kurt-migrate" >/dev/null 2>&1

psql -q "$KURT_PG_PRIMARY_URL" -c "INSERT INTO links (code, account_id, target_url)
  SELECT 'bench' || i, 'bench', 'https://example.com/landing/' || i
  FROM generate_series(1, $hot) i ON CONFLICT (code) DO NOTHING" >/dev/null
"$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --create \
  --if-not-exists --topic "$topic" --partitions 3 --replication-factor 1 >/dev/null 2>&1

"$KURT_BUILD_DIR/bin/kurt-links" --grpc_port=$grpc_port --metrics_port=$http_port \
  --clicks_topic=$topic --log_level=warn >"$work/links.log" 2>&1 &
links_pid=$!
trap 'kill $links_pid 2>/dev/null; wait $links_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$http_port/readyz" && break; sleep 0.1; done

python3 -c "import json; print(json.dumps([{'code': f'bench{i}'} for i in range(1, $hot + 1)]))" \
  >"$work/codes.json"
# Warm the cache: every hot code once.
"$ghz" --insecure --call kurt.links.v1.LinksService/Resolve --data-file "$work/codes.json" \
  -n "$hot" -c 1 127.0.0.1:$grpc_port >/dev/null

echo "Resolve: ${seconds}s, $concurrency concurrent, $hot hot codes (ghz) ..." >&2
"$ghz" --insecure --call kurt.links.v1.LinksService/Resolve --data-file "$work/codes.json" \
  -c "$concurrency" --connections=4 -z "${seconds}s" -O json 127.0.0.1:$grpc_port \
  >"$work/ghz.json"
echo "Redis GET: $concurrency clients (redis-benchmark) ..." >&2
redis-benchmark -h 127.0.0.1 -p "$KURT_REDIS_PORT" -t get -c "$concurrency" -n 1000000 --csv \
  >"$work/redis.csv"

python3 - "$work/ghz.json" "$work/redis.csv" "$out/links.json" "$seconds" "$concurrency" "$hot" <<'PY'
import csv, json, sys
ghz_file, redis_file, out_file, seconds, concurrency, hot = sys.argv[1:]
g = json.load(open(ghz_file))
lat = {int(d["percentage"]): d["latency"] / 1e6 for d in g.get("latencyDistribution") or []}
ok = g.get("statusCodeDistribution", {}).get("OK", 0)
errors = sum(v for k, v in g.get("statusCodeDistribution", {}).items() if k != "OK")
# ghz cancels the calls still in flight when the duration ends ("... is closing").
cut = sum(n for e, n in (g.get("errorDistribution") or {}).items() if "closing" in e)
errors -= cut
rows = list(csv.DictReader(open(redis_file)))
r = next(row for row in rows if row["test"].startswith("GET"))
resolve = {"rps": round(g["rps"]), "p50_ms": round(lat.get(50, 0), 3),
           "p99_ms": round(lat.get(99, 0), 3), "ok": ok, "errors": errors}
redis = {"rps": round(float(r["rps"])), "p50_ms": float(r["p50_latency_ms"]),
         "p99_ms": float(r["p99_latency_ms"])}
ratio = resolve["rps"] / redis["rps"]
print(f"{'':28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
print(f"{'links Resolve (ghz)':28} {resolve['rps']:>10} {resolve['p50_ms']:>8} {resolve['p99_ms']:>8}")
print(f"{'redis GET (redis-benchmark)':28} {redis['rps']:>10} {redis['p50_ms']:>8} {redis['p99_ms']:>8}")
print(f"resolve_rps_vs_redis_get = {ratio:.3f}   (Resolve errors: {errors}; "
      f"{cut} in flight when the run ended)")
for err, n in (g.get("errorDistribution") or {}).items():
    if "closing" not in err:
        print(f"  {n} x {err}")
json.dump({"benchmark": "links", "seconds": int(seconds), "concurrency": int(concurrency),
           "hot_codes": int(hot), "resolve": resolve, "redis_get": redis,
           "ratios": {"resolve_rps_vs_redis_get": round(ratio, 4)}},
          open(out_file, "w"), indent=2)
PY

#!/usr/bin/env bash
# tools/bench mtls: what mutual TLS costs the redirect. Two kurt-links and two edges, one pair in
# plaintext and one with mTLS on the edge -> links hop (certificates from tools/certs), under the
# same wrk load: the uncached redirect (the edge's cache off: a gRPC call per request) and the
# cached one (each answer still reported to kurt-links in batches). KURT_BENCH_RUNS adjacent pairs
# per comparison, the order alternating; the ratio is the median of the pairs' ratios.
# Writes $KURT_STATE_DIR/bench/mtls.json (ratios redirect_rps_mtls_vs_plaintext,
# cached_redirect_rps_mtls_vs_plaintext). Uses the running stack when KURT_PG_PRIMARY_URL is set,
# else starts it; KURT_SKIP_BUILD=1 takes the binaries as built. Knobs: KURT_BENCH_SECONDS (5),
# KURT_BENCH_RUNS (3), KURT_BENCH_CONNECTIONS (64), KURT_BENCH_HOT_CODES (100).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

. "$KURT_ROOT/tools/bench.d/lib/knobs.sh"
bench_knobs 64 100
plain_grpc=17121 plain_http=19121 tls_grpc=17122 tls_http=19122
plain_edge=18191 tls_edge=18192
topic=kurt.bench.clicks.v1
account=bench-mtls
out=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$out"

apt_install wrk curl postgresql-client
bench_stack kurt-links kurt-migrate kurt-edge
"$KURT_BUILD_DIR/bin/kurt-migrate" >/dev/null 2>&1
"$KURT_ROOT/tools/certs" "$work/certs" kurt-links kurt-edge

. "$KURT_ROOT/tools/bench.d/lib/servers.sh"
bench_seed mtlsbench "$account" "$hot" "$topic"
tls() { # IDENTITY: the flags of mutual TLS with that certificate
  echo "--tls_cert=$work/certs/$1.crt --tls_key=$work/certs/$1.key --tls_ca=$work/certs/ca.crt"
}

start_links() { # GRPC HTTP [TLS flags]
  "$KURT_BUILD_DIR/bin/kurt-links" --grpc_port="$1" --metrics_port="$2" --clicks_topic=$topic \
    --log_level=warn "${@:3}" >>"$work/links.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$2/readyz"
}
start_edges() { # extra edge flags...: (re)starts both edges
  local p
  for p in "${edge_pids[@]:-}"; do [ -z "$p" ] || { kill "$p"; wait "$p" 2>/dev/null || true; }; done
  edge_pids=()
  "$KURT_BUILD_DIR/bin/kurt-edge" --edge_port=$plain_edge --log_level=warn --upstream_host= \
    --upstream=kurt.links.v1.LinksService=127.0.0.1:$plain_grpc "$@" >>"$work/edge.log" 2>&1 &
  edge_pids+=($!)
  # shellcheck disable=SC2046
  "$KURT_BUILD_DIR/bin/kurt-edge" --edge_port=$tls_edge --log_level=warn --upstream_host= \
    --upstream=kurt.links.v1.LinksService=127.0.0.1:$tls_grpc $(tls kurt-edge) "$@" \
    >>"$work/edge.log" 2>&1 &
  edge_pids+=($!)
  pids+=("${edge_pids[@]}")
  wait_http "http://127.0.0.1:$plain_edge/healthz"
  wait_http "http://127.0.0.1:$tls_edge/healthz"
}
start_links $plain_grpc $plain_http
# shellcheck disable=SC2046
start_links $tls_grpc $tls_http $(tls kurt-links)

cat >"$work/redirect.lua" <<LUA
local i = 0
request = function()
  i = i % $hot + 1
  return wrk.format("GET", "/mtlsbench" .. i)
end
LUA
run_wrk() { # NAME PORT
  log "wrk $1: ${seconds}s, $connections connections"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/redirect.lua" \
    "http://127.0.0.1:$2" >"$work/$1.txt" 2>&1
}
pair() { # KIND: RUNS adjacent pairs of plaintext and mTLS, the order alternating
  local i
  wrk -t1 -c4 -d1s -s "$work/redirect.lua" "http://127.0.0.1:$plain_edge" >/dev/null 2>&1
  wrk -t1 -c4 -d1s -s "$work/redirect.lua" "http://127.0.0.1:$tls_edge" >/dev/null 2>&1
  for i in $(seq "$runs"); do
    if [ $((i % 2)) = 1 ]; then
      run_wrk "$1_plaintext.$i" $plain_edge
      run_wrk "$1_mtls.$i" $tls_edge
    else
      run_wrk "$1_mtls.$i" $tls_edge
      run_wrk "$1_plaintext.$i" $plain_edge
    fi
  done
}
edge_pids=()
start_edges --cache_entries=0
pair redirect
start_edges
pair cached_redirect
# Every redirect answered 302 through the mTLS edge, and its reports of cached ones accepted.
reported=$(curl -s "http://127.0.0.1:$tls_edge/metrics" |
  awk '$1 == "kurt_edge_cached_hits_total{outcome=\"dropped\"}" { v = $2 } END { print v + 0 }')
[ "${reported%.*}" = 0 ] || die "the mTLS edge dropped $reported reports of cached redirects"

PYTHONPATH="$KURT_ROOT/tools/bench.d/lib" python3 - "$work" "$out/mtls.json" "$runs" <<'PY'
import json, statistics, sys
from wrk_report import parse as wrk_parse
work, out_file, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def parse(name):
    return wrk_parse(f"{work}/{name}.txt", "302")

rows, ratios = {}, {}
for kind in ["redirect", "cached_redirect"]:
    a = [parse(f"{kind}_mtls.{i}") for i in range(1, runs + 1)]
    b = [parse(f"{kind}_plaintext.{i}") for i in range(1, runs + 1)]
    ratios[f"{kind}_rps_mtls_vs_plaintext"] = round(
        statistics.median(x["rps"] / max(y["rps"], 1) for x, y in zip(a, b)), 3)
    for name, rs in ((f"{kind}_plaintext", b), (f"{kind}_mtls", a)):
        r = dict(sorted(rs, key=lambda x: x["rps"])[len(rs) // 2])
        r["rps_runs"] = [x["rps"] for x in rs]
        rows[name] = r
print(f"{'':26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  req/s of each run")
for name, r in rows.items():
    print(f"{name:26} {r['rps']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8}  {r['rps_runs']}")
for k, v in ratios.items():
    print(f"{k}: {v}")
json.dump({"rows": rows, "ratios": ratios}, open(out_file, "w"), indent=2)
PY

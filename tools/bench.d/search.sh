#!/usr/bin/env bash
# tools/bench search: GET /v1/links through the edge and kurt-links, on an account of 1,000,000
# links, beside the same requests on an account of 1,000 links made the same way, in one run: what
# a million links cost a list, a tag, a rare text and a common text. Each comparison is
# KURT_BENCH_RUNS adjacent pairs, the order alternating, and its ratio the median of the pairs'.
# The links are those of migration 0013's indexes: tags (GIN) and code and target (pg_trgm).
# Writes $KURT_STATE_DIR/bench/search.json (ratios <filter>_rps_1m_vs_1k; targets: the list and a
# tag at least 0.5, i.e. a million links at most halve their throughput: both read only their page
# from an index in the list's order. A text's cost grows with the account's links that share its
# trigrams: measured, without a target).
# Knobs: KURT_BENCH_SECONDS (5), KURT_BENCH_RUNS (3), KURT_BENCH_CONNECTIONS (8),
# KURT_BENCH_SEARCH_LINKS (1000000).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

. "$KURT_ROOT/tools/bench.d/lib/knobs.sh"
bench_knobs 8 0
big=${KURT_BENCH_SEARCH_LINKS:-1000000}
small=1000
db=kurt_bench_search
links_grpc=17121 links_http=19121 edge_port=18191
topic=kurt.bench.clicks.v1
out=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$out"

apt_install wrk
bench_stack kurt-links kurt-migrate kurt-edge
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS
primary=${KURT_PG_PRIMARY_URL%/*}/$db
replica=${KURT_PG_REPLICA_URL%/*}/$db
. "$KURT_ROOT/tools/bench.d/lib/servers.sh"

# A database of the benchmark's own, seeded once. Both accounts' links are made alike: link i has
# the tag "t<i mod 1000>" (so a tag is on 1,000 of a million links, on 1 of a thousand), the
# target https://site<i mod 1000>.example/<md5 of i> (a text of trigrams every link shares, such
# as "site7.example", the slow case) and one create time per second back from now.
. "$KURT_ROOT/tools/bench.d/lib/database.sh"
bench_database "$db"
seed() { # ACCOUNT PREFIX COUNT: the account's links, made once
  local have
  have=$(psql -qtA "$primary" -c "SELECT count(*) FROM links WHERE account_id = '$1'")
  [ "$have" = "$3" ] && return 0
  log "seeding $3 links of $1 (once; a million take a few minutes)"
  psql -q -v ON_ERROR_STOP=1 "$primary" <<SQL
DELETE FROM links WHERE account_id = '$1';
INSERT INTO links (code, account_id, target_url, tags, create_time)
  SELECT '$2' || i, '$1', 'https://site' || (i % 1000) || '.example/' || md5(i::text),
         ARRAY['t' || (i % 1000)], now() - i * interval '1 second'
  FROM generate_series(1, $3) i;
VACUUM ANALYZE links;
SQL
}
seed bench-search-1m sm "$big"
seed bench-search-1k sk "$small"
lsn=$(psql -qtA "$primary" -c "SELECT pg_current_wal_lsn()")
until [ "$(psql -qtA "$replica" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ]; do
  sleep 0.2
done
"$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --create \
  --if-not-exists --topic "$topic" --partitions 3 --replication-factor 1 >/dev/null 2>&1 || true

"$KURT_BUILD_DIR/bin/kurt-links" --grpc_port=$links_grpc --metrics_port=$links_http \
  --pg_primary_url="$primary" --pg_replica_url="$replica" --clicks_topic=$topic \
  --log_level=warn >"$work/links.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$links_http/readyz"
"$KURT_BUILD_DIR/bin/kurt-edge" --edge_port=$edge_port --log_level=warn --cache_entries=0 \
  --upstream=kurt.links.v1.LinksService=127.0.0.1:$links_grpc --dev_trust_account_header \
  >"$work/edge.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$edge_port/healthz"

# One wrk script per filter and account, each request with another tag or text of its kind:
# list: no filter; tag: t<k>; rare: 6 hex digits of md5(k), in one target each; common:
# site<k>.example, made of trigrams every link shares (the slow case), k in 0..999.
filters="list tag rare common"
python3 - "$work" <<'PY'
import hashlib, sys
work = sys.argv[1]
queries = {
    "list": [""],
    "tag": [f"&tag=t{k}" for k in range(1000)],
    "rare": [f"&query={hashlib.md5(str(k).encode()).hexdigest()[:6]}" for k in range(1, 1001)],
    "common": [f"&query=site{k}.example" for k in range(1000)],
}
for name, qs in queries.items():
    for size in ("1m", "1k"):
        with open(f"{work}/{name}_{size}.lua", "w") as f:
            f.write("local qs = {" + ",".join(f'"{q}"' for q in qs) + "}\nlocal i = 0\n"
                    "request = function()\n  i = i % #qs + 1\n"
                    '  return wrk.format("GET", "/v1/links?pageSize=20" .. qs[i],\n'
                    f'    {{["X-Kurt-Account-Id"] = "bench-search-{size}"}})\nend\n')
PY

# Every filter answers 200 with a full page on the big account before anything is timed.
for f in $filters; do
  wrk -t1 -c2 -d1s -s "$work/${f}_1m.lua" "http://127.0.0.1:$edge_port" >"$work/warm_$f.txt" 2>&1
  grep -q "Non-2xx" "$work/warm_$f.txt" && die "$f: the edge answered errors: $(cat "$work/warm_$f.txt")"
  wrk -t1 -c2 -d1s -s "$work/${f}_1k.lua" "http://127.0.0.1:$edge_port" >/dev/null 2>&1
done
for q in "tag=t7" "query=site7.example" "query=e4da3b"; do
  n=$(curl -sf -H "X-Kurt-Account-Id: bench-search-1m" \
    "http://127.0.0.1:$edge_port/v1/links?pageSize=20&$q" | python3 -c "import json,sys; print(len(json.load(sys.stdin).get('links', [])))")
  [ "$n" -ge 1 ] || die "GET /v1/links?$q found nothing in the big account"
done

run_wrk() { # NAME SCRIPT
  log "wrk $1: ${seconds}s, $connections connections"
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$2" "http://127.0.0.1:$edge_port" \
    >"$work/$1.txt" 2>&1
}
for f in $filters; do
  for i in $(seq "$runs"); do
    if [ $((i % 2)) = 1 ]; then
      run_wrk "${f}_1m.$i" "$work/${f}_1m.lua"; run_wrk "${f}_1k.$i" "$work/${f}_1k.lua"
    else
      run_wrk "${f}_1k.$i" "$work/${f}_1k.lua"; run_wrk "${f}_1m.$i" "$work/${f}_1m.lua"
    fi
  done
done

PYTHONPATH="$KURT_ROOT/tools/bench.d/lib" python3 - "$work" "$out/search.json" "$seconds" "$connections" "$runs" "$big" "$filters" <<'PY'
import json, statistics, sys
from wrk_report import parse as wrk_parse
work, out_file, seconds, connections, runs, big, filters = sys.argv[1:]
runs = int(runs)

def parse(name):
    return wrk_parse(f"{work}/{name}.txt", "200")

def summary(rs):
    r = dict(sorted(rs, key=lambda x: x["rps"])[len(rs) // 2])
    r["rps_runs"] = [x["rps"] for x in rs]
    return r

rows, ratios, pairs = {}, {}, {}
for f in filters.split():
    a = [parse(f"{f}_1m.{i}") for i in range(1, runs + 1)]
    b = [parse(f"{f}_1k.{i}") for i in range(1, runs + 1)]
    name = f"{f}_rps_1m_vs_1k"
    pairs[name] = [round(x["rps"] / max(y["rps"], 1), 3) for x, y in zip(a, b)]
    ratios[name] = round(statistics.median(pairs[name]), 3)
    rows[f"{f}_1m"], rows[f"{f}_1k"] = summary(a), summary(b)
targets = {f"{f}_rps_1m_vs_1k": 0.5 for f in ("list", "tag")}
print(f"{'':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  req/s of each run")
for name, r in rows.items():
    print(f"{name:12} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8}  {r['rps_runs']}")
for k, v in ratios.items():
    t = f"  (target >= {targets[k]}: {'met' if v >= targets[k] else 'NOT met'})" if k in targets else ""
    print(f"{k} = {v}   (median of the pairs {pairs[k]}){t}")
json.dump({"benchmark": "search", "links": int(big), "seconds": int(seconds), "runs": runs,
           "connections": int(connections), "page_size": 20, "results": rows,
           "targets": targets, "ratios": ratios, "pairs": pairs}, open(out_file, "w"), indent=2)
print(f"wrote {out_file}")
PY

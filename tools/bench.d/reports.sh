#!/usr/bin/env bash
# tools/bench reports: a CLICKS_CSV report over >= 1,000,000 raw clicks (request -> kurt-reports ->
# outbox -> Kafka -> kurt-report-worker -> COPY on the replica -> artifact -> SUCCEEDED), beside
# psql's \copy of the same query to a file, in one run; both outputs must be byte-identical.
# Writes $KURT_STATE_DIR/bench/reports.json (ratio report_time_vs_psql_copy; target <= 1.5) with
# the worker's peak resident memory.
# Knobs: KURT_BENCH_CLICKS (1000000), KURT_BENCH_RUNS (3).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

clicks=${KURT_BENCH_CLICKS:-1000000}
runs=${KURT_BENCH_RUNS:-3}
links=100
per_link=$(((clicks + links - 1) / links))
account=bench-reports
db=kurt_bench_reports
grpc_port=17104
http_port=19104
worker_grpc_port=17105
worker_http_port=19105
topic_prefix=kurt.bench.reports
out=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$out"

"$KURT_ROOT/tools/build" kurt-reports kurt-report-worker kurt-migrate
"$KURT_ROOT/tools/stack" up >/dev/null
set -a
. "$KURT_STATE_DIR/stack.env"
set +a
grpcurl=$(go_tool grpcurl "$KURT_GRPCURL_MODULE")
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS
export PGTZ=UTC
primary=${KURT_PG_PRIMARY_URL%/*}/$db
replica=${KURT_PG_REPLICA_URL%/*}/$db

# A database of the benchmark's own, seeded once: $clicks clicks of the account's links in January
# 2026, and a fifth as many of another account's (which the report must leave out).
. "$KURT_ROOT/tools/bench.d/lib/database.sh"
bench_database "$db"
have=$(psql -qtA "$primary" -c "SELECT count(*) FROM clicks c JOIN links l ON l.code = c.code
  WHERE l.account_id = '$account'")
if [ "$have" -ne $((links * per_link)) ]; then
  echo "seeding $((links * per_link)) clicks (once) ..." >&2
  psql -q -v ON_ERROR_STOP=1 "$primary" <<SQL
TRUNCATE clicks; DELETE FROM links WHERE account_id IN ('$account', 'bench-other');
INSERT INTO links (code, account_id, target_url)
  SELECT 'rb' || lpad(i::text, 4, '0'), CASE WHEN i <= $links THEN '$account' ELSE 'bench-other' END,
         'https://example.com/' || i
  FROM generate_series(1, $((links + links / 5))) i;
INSERT INTO clicks (code, click_time, event_id, referrer, user_agent, client_hash,
                    kafka_partition, kafka_offset)
  SELECT 'rb' || lpad(l::text, 4, '0'),
         timestamptz '2026-01-01 00:00:00+00' + (n * 2678400.0 / $per_link) * interval '1 second',
         md5(l || ':' || n), 'https://referrer' || (n % 50) || '.example/page',
         'Mozilla/5.0 (X11; Linux x86_64) bench/' || (n % 20), md5('client' || (n % 5000)), l % 3, n
  FROM generate_series(1, $((links + links / 5))) l, generate_series(0, $per_link - 1) n;
VACUUM ANALYZE clicks; ANALYZE links;
SQL
fi
# The replica must have it all: both sides read there.
lsn=$(psql -qtA "$primary" -c "SELECT pg_current_wal_lsn()")
until [ "$(psql -qtA "$replica" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ]; do
  sleep 0.2
done

for t in requested completed dlq; do
  "$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --create \
    --if-not-exists --topic "$topic_prefix.$t.v1" --partitions 3 --replication-factor 1 \
    >/dev/null 2>&1
done

common=(--pg_primary_url="$primary" --pg_replica_url="$replica" --log_level=warn
  --artifact_dir="$work/artifacts" --requested_topic=$topic_prefix.requested.v1)
"$KURT_BUILD_DIR/bin/kurt-reports" "${common[@]}" --grpc_port=$grpc_port \
  --metrics_port=$http_port >"$work/reports.log" 2>&1 &
reports_pid=$!
"$KURT_BUILD_DIR/bin/kurt-report-worker" "${common[@]}" --grpc_port=$worker_grpc_port \
  --metrics_port=$worker_http_port --completed_topic=$topic_prefix.completed.v1 \
  --dead_letter_topic=$topic_prefix.dlq.v1 --consumer_group=kurt-bench-report-worker \
  >"$work/worker.log" 2>&1 &
worker_pid=$!
trap 'kill $reports_pid $worker_pid 2>/dev/null; wait $reports_pid $worker_pid 2>/dev/null; rm -rf "$work"' EXIT
for port in $http_port $worker_http_port; do
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
done
rss_start=$(awk '/VmHWM/ {print $2}' "/proc/$worker_pid/status")

start=2026-01-01T00:00:00Z
end=2026-02-01T00:00:00Z
# The worker's query (services/report-worker/report_source.cc, ClicksCsvQuery), for psql: the
# account's codes as a constant list, read first, as the worker does.
codes=$(psql -qtAX "$replica" -c "SELECT COALESCE(array_agg(code), '{}')::text FROM links
  WHERE account_id = '$account'")
safe() { echo "CASE WHEN left($1, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || $1 ELSE $1 END AS $2"; }
query="SELECT $(safe c.code code), c.click_time, $(safe c.referrer referrer),
  $(safe c.user_agent user_agent), c.client_hash, c.event_id
  FROM clicks c WHERE c.code = ANY ('$codes'::text[])
  AND c.click_time >= '2026-01-01T00:00:00.000000Z'::timestamptz
  AND c.click_time < '2026-02-01T00:00:00.000000Z'::timestamptz
  ORDER BY c.code, c.click_time, c.event_id"

now_ms() { date +%s%3N; }

psql_copy() { # prints seconds
  local t0 t1
  t0=$(now_ms)
  psql -qX "$replica" -c "\\copy ($query) to '$work/psql.csv' with (format csv, header, force_quote (code, referrer, user_agent))"
  t1=$(now_ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }'
}

report() { # prints "end-to-end seconds;scan seconds;report id"
  local id state
  id=$("$grpcurl" -plaintext -H "x-kurt-account-id: $account" \
    -d "{\"kind\": \"CLICKS_CSV\", \"start_time\": \"$start\", \"end_time\": \"$end\"}" \
    127.0.0.1:$grpc_port kurt.reports.v1.ReportsService/CreateReport |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 1200); do
    state=$(psql -qtAX "$primary" -c "SELECT state FROM report_jobs WHERE id = '$id'")
    case $state in SUCCEEDED) break ;; FAILED | CANCELLED) die "report $id ended $state" ;; esac
    sleep 0.05
  done
  [ "$state" = SUCCEEDED ] || die "report $id not done within a minute"
  # The service's own clock: from the request to the final state, and the worker's attempt.
  psql -qtAX "$primary" -c "SELECT round(extract(epoch FROM finish_time - create_time), 3) || ';' ||
    round(extract(epoch FROM finish_time - start_run_time), 3) || ';' || id FROM report_jobs
    WHERE id = '$id'"
}

echo "warming up (one of each) ..." >&2
psql_copy >/dev/null
report >/dev/null
psql_times=()
report_times=()
scan_times=()
for i in $(seq "$runs"); do
  echo "run $i/$runs ..." >&2
  psql_times+=("$(psql_copy)")
  IFS=';' read -r total scan id <<<"$(report)"
  report_times+=("$total")
  scan_times+=("$scan")
done
artifact=$(psql -qtAX "$primary" -c "SELECT artifact_key FROM report_jobs WHERE id = '$id'")
if cmp -s "$work/psql.csv" "$work/artifacts/$artifact"; then same=true; else same=false; fi
rows=$(($(wc -l <"$work/psql.csv") - 1))
bytes=$(stat -c %s "$work/psql.csv")
rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$worker_pid/status")

python3 - "$out/reports.json" "$rows" "$bytes" "$same" "$rss_start" "$rss_peak" \
  "${psql_times[*]}" "${report_times[*]}" "${scan_times[*]}" <<'PY'
import json, statistics, sys
out, rows, size, same, rss_start, rss_peak, psql_t, report_t, scan_t = sys.argv[1:]
psql_t = [float(x) for x in psql_t.split()]
report_t = [float(x) for x in report_t.split()]
scan_t = [float(x) for x in scan_t.split()]
p, r, s = statistics.median(psql_t), statistics.median(report_t), statistics.median(scan_t)
ratio = r / p
print(f"CLICKS_CSV report of {int(rows):,} clicks ({int(size) / 1e6:.1f} MB), median of {len(psql_t)} runs:")
label = "psql \\copy (same query, replica) to a file"
print(f"{'':44} {'seconds':>8}")
print(f"{label:44} {p:>8.3f}")
print(f"{'report: request -> SUCCEEDED':44} {r:>8.3f}")
print(f"{'  of which the worker attempt (scan+fsync)':44} {s:>8.3f}")
print(f"report_time_vs_psql_copy = {ratio:.3f}   (target <= 1.5)")
print(f"artifact identical to psql's output: {same}")
print(f"worker peak RSS: {int(rss_peak) / 1024:.1f} MB (at start {int(rss_start) / 1024:.1f} MB)")
json.dump({"benchmark": "reports", "rows": int(rows), "bytes": int(size),
           "identical_output": same == "true",
           "psql_copy_seconds": psql_t, "report_seconds": report_t,
           "worker_attempt_seconds": scan_t,
           "worker_peak_rss_mb": round(int(rss_peak) / 1024, 1),
           "worker_start_rss_mb": round(int(rss_start) / 1024, 1),
           "ratios": {"report_time_vs_psql_copy": round(ratio, 4)}},
          open(out, "w"), indent=2)
PY

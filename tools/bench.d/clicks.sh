#!/usr/bin/env bash
# tools/bench clicks: click ingestion end to end — M click events published to a fresh topic (by
# kurt-clicks-loadgen, an idempotent acks=all librdkafka producer like the links service's) and
# consumed by kurt-analytics into raw clicks + hourly aggregates + offsets; the clock runs from the
# first produce to the moment the aggregates hold all M — beside Kafka's ProducerPerformance (from
# the broker's jars) publishing M records of the same size to a topic with the same settings, with
# the same producer settings, in one run.
# This machine's speed drifts by a third within minutes, so the two are measured in adjacent pairs,
# KURT_BENCH_RUNS (5) times, after one ProducerPerformance run that warms the JVM and is not
# counted; the ratio is the median of the pairs' ratios, and every pair is printed.
# Writes $KURT_STATE_DIR/bench/clicks.json (ratio ingest_vs_kafka_producer; target >= 0.5).
# Knobs: KURT_BENCH_CLICKS (1000000), KURT_BENCH_RUNS (5), KURT_BENCH_PARTITIONS (3),
# KURT_BENCH_ANALYTICS_FLAGS (extra kurt-analytics flags, e.g. --batch_max_messages=20000).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

clicks=${KURT_BENCH_CLICKS:-1000000}
runs=${KURT_BENCH_RUNS:-5}
partitions=${KURT_BENCH_PARTITIONS:-3}
# shellcheck disable=SC2206 # a list of flags
analytics_flags=(${KURT_BENCH_ANALYTICS_FLAGS:-})
links=1000
run=$(date +%s)$$
db=kurt_bench_clicks_$run
topics=kurt.bench.clicks.$run
perf_topics=kurt.bench.producer-perf.$run
out=$KURT_STATE_DIR/bench
work=$(mktemp -d)
mkdir -p "$out"

"$KURT_ROOT/tools/build" kurt-analytics kurt-clicks-loadgen kurt-migrate
"$KURT_ROOT/tools/stack" up >/dev/null
set -a
. "$KURT_STATE_DIR/stack.env"
set +a
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS
primary=${KURT_PG_PRIMARY_URL%/*}/$db
replica=${KURT_PG_REPLICA_URL%/*}/$db

analytics_pid=
loadgen_pid=
cleanup() {
  [ -n "$analytics_pid" ] && kill "$analytics_pid" 2>/dev/null && wait "$analytics_pid" 2>/dev/null
  psql -qX "$KURT_PG_PRIMARY_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  "$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --delete \
    --topic "${topics//./\\.}\\..*|${perf_topics//./\\.}\\..*" >/dev/null 2>&1 || true
  # The consumer's log stays for a look at its batches (--log_level=debug logs each one).
  [ -f "$work/analytics.log" ] && cp "$work/analytics.log" "$out/clicks-analytics.log"
  rm -rf "$work"
}
trap cleanup EXIT

# A database and topics of this run's own.
psql -qX "$KURT_PG_PRIMARY_URL" -c "CREATE DATABASE $db"
"$KURT_BUILD_DIR/bin/kurt-migrate" --pg_primary_url="$primary" >"$work/migrate.log" 2>&1 ||
  die "migrations failed: $(tail -n 3 "$work/migrate.log")"
psql -qX -v ON_ERROR_STOP=1 "$primary" -c "INSERT INTO links (code, account_id, target_url)
  SELECT 'bench' || i, 'bench-clicks', 'https://example.com/' || i FROM generate_series(1, $links) i"
new_topic() {
  "$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --create \
    --topic "$1" --partitions "$partitions" --replication-factor 1 >/dev/null
}

# Starts kurt-analytics on topic $1 with group $2 and waits until it has joined its group: the
# clock measures ingestion, not start-up.
start_analytics() {
  "$KURT_BUILD_DIR/bin/kurt-analytics" --pg_primary_url="$primary" --pg_replica_url="$replica" \
    --kafka_brokers="$KURT_KAFKA_BROKERS" --clicks_topic="$1" --dead_letter_topic="$1.dlq" \
    --consumer_group="$2" --grpc_port=0 --metrics_port=-1 "${analytics_flags[@]}" \
    >"$work/analytics.log" 2>&1 &
  analytics_pid=$!
  for _ in $(seq 300); do
    grep -q '"partitions assigned"' "$work/analytics.log" && break
    kill -0 "$analytics_pid" 2>/dev/null || die "kurt-analytics exited: $(tail -n 3 "$work/analytics.log")"
    sleep 0.1
  done
  grep -q '"partitions assigned"' "$work/analytics.log" || die "kurt-analytics did not join its group"
}

# One psql session answers every poll (a psql per poll would cost a good part of a core).
coproc POLL { psql -qtAX "$primary"; }
# Sets $seen to the clicks whose transaction has committed: the stored offsets (the sum of the
# next offsets of a fresh topic) move in the same transaction as a batch's raw rows and sums, so
# this is the count in the aggregates, without scanning them on every poll (checked at the end).
# No subshell: it could not use the coprocess.
count_seen() {
  echo "SELECT COALESCE(sum(next_offset), 0) FROM analytics_consumer_offsets;" >&"${POLL[1]}"
  read -r seen <&"${POLL[0]}"
}
count_aggregated() {
  psql -qtAX "$primary" -c "SELECT COALESCE(sum(clicks), 0) FROM click_hourly"
}
now() { date +%s.%N; }
# The processes of this stack's server $1 (pg-primary, pg-replica, kafka): the one whose pid
# tools/stack recorded and its children. By pid, not by name: another stack on the machine (one
# per worktree) runs processes of the same names.
stack_pids() {
  local pid
  pid=$(cat "$KURT_STATE_DIR/run/$1.pid" 2>/dev/null) || return 0
  echo "$pid $(pgrep -d' ' -P "$pid")"
}
# CPU seconds (user + system) used so far by each group of processes, one line per group:
# kurt-analytics, PostgreSQL primary, replica, the Kafka broker (the load generator reports its
# own: it may be gone by the end).
cpu_groups() {
  local pids pid
  for pids in "$analytics_pid" "$(stack_pids pg-primary)" "$(stack_pids pg-replica)" \
    "$(stack_pids kafka)"; do
    # shellcheck disable=SC2086 # a list of pids, some of which may have ended
    for pid in $pids; do cat "/proc/$pid/stat" 2>/dev/null || true; done |
      awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%.2f\n", t / hz }'
  done
}

# One ingestion: run $1 on a fresh topic and group, with empty tables. Leaves in $work/run$1.*
# the load generator's report, the end time and the CPU seconds of each process group.
ingest_once() {
  local i=$1 topic=$topics.$1
  psql -qX "$primary" -c "TRUNCATE clicks, click_hourly, click_referrers_hourly,
    click_agents_hourly, click_countries_hourly, analytics_consumer_offsets" >/dev/null
  new_topic "$topic"
  new_topic "$topic.dlq"
  start_analytics "$topic" "kurt-bench-analytics-$run-$i"
  echo "run $i of $runs: ingesting $clicks clicks through kurt-analytics ($partitions partitions) ..." >&2
  # The clock starts when the load generator starts producing (it reports when: it builds its
  # events first), and stops when the aggregates hold every click.
  "$KURT_BUILD_DIR/bin/kurt-clicks-loadgen" --kafka_brokers="$KURT_KAFKA_BROKERS" --topic="$topic" \
    --count="$clicks" --code_prefix=bench --codes=$links --log_level=warn >"$work/run$i.loadgen" &
  loadgen_pid=$!
  cpu_groups >"$work/run$i.cpu0"
  seen=0
  local deadline=$((SECONDS + 600))
  while [ "$seen" -lt "$clicks" ]; do
    [ $SECONDS -lt $deadline ] || die "only $seen of $clicks clicks counted within 10 minutes"
    sleep 0.05
    count_seen
  done
  now >"$work/run$i.end"
  cpu_groups >"$work/run$i.cpu1"
  wait "$loadgen_pid" || die "the load generator failed"
  loadgen_pid=
  local raw aggregated
  raw=$(psql -qtAX "$primary" -c "SELECT count(*) FROM clicks")
  aggregated=$(count_aggregated)
  [ "$raw" -eq "$clicks" ] && [ "$aggregated" -eq "$clicks" ] ||
    die "counted $aggregated clicks and $raw raw rows for $clicks published"
  kill "$analytics_pid"
  wait "$analytics_pid" 2>/dev/null || true
  analytics_pid=
}

# Kafka's own producer: the same record count and size, the same producer settings as Kurt's
# (platform/kafka/kafka.cc ProducerConfig), to a fresh topic with the same partitions; appends its
# summary to $2.
reference_once() {
  local topic=$perf_topics.$1
  new_topic "$topic"
  echo "ProducerPerformance ($1): $clicks records of $record_size bytes ..." >&2
  "$KURT_ROOT/tools/kafka" producer-perf --topic "$topic" --num-records "$clicks" \
    --record-size "$record_size" --throughput -1 --producer-props \
    bootstrap.servers="$KURT_KAFKA_BROKERS" acks=all enable.idempotence=true linger.ms=5 \
    compression.type=lz4 >"$work/perf.out" 2>&1 ||
    die "ProducerPerformance failed: $(tail -n 3 "$work/perf.out")"
  grep "records sent" "$work/perf.out" | tail -n 1 >>"$2"
}

for i in $(seq "$runs"); do
  ingest_once "$i"
  if [ "$i" -eq 1 ]; then
    record_size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value_bytes"])' \
      "$work/run1.loadgen")
    reference_once warm-up /dev/null
  fi
  reference_once "$i" "$work/perf.log"
done

python3 - "$out/clicks.json" "$clicks" "$partitions" "$record_size" "$runs" "$work" \
  "${analytics_flags[*]}" <<'PY'
import json, re, statistics, sys
out, clicks, partitions, size, runs, work, flags = sys.argv[1:]
clicks, partitions, size, runs = int(clicks), int(partitions), int(size), int(runs)
# The summary line: "1000000 records sent, 254323.4 records/sec (24.25 MB/sec), ..."
summaries = [l.strip() for l in open(f"{work}/perf.log")]
rate_of = lambda l: float(re.search(r"([\d.]+) records/sec", l).group(1))
names = ["kurt-analytics", "postgresql primary", "postgresql replica", "kafka broker"]
pairs = []
for i in range(1, runs + 1):
    produced = json.load(open(f"{work}/run{i}.loadgen"))
    seconds = float(open(f"{work}/run{i}.end").read()) - produced["start_unix"]
    cpu = {n: round(float(b) - float(a), 2) for n, a, b in zip(
        names, open(f"{work}/run{i}.cpu0").read().split(), open(f"{work}/run{i}.cpu1").read().split())}
    cpu["kurt-clicks-loadgen"] = round(produced["cpu_seconds"], 2)
    kafka_rate = rate_of(summaries[i - 1])
    pairs.append({"ingest_seconds": round(seconds, 3),
                  "ingest_clicks_per_second": round(clicks / seconds),
                  "loadgen_produce_seconds": round(produced["seconds"], 3),
                  "kafka_producer_perf_records_per_second": kafka_rate,
                  "kafka_producer_perf_summary": summaries[i - 1],
                  "cpu_seconds_while_ingesting": cpu,
                  "ratio": round(clicks / seconds / kafka_rate, 4)})
ratio = statistics.median(p["ratio"] for p in pairs)
print(f"{clicks:,} clicks, {size}-byte events, {partitions} partitions, acks=all idempotent lz4:")
print(f"{'run':>3} {'kurt end to end':>16} {'(producing)':>12} {'ProducerPerformance':>20} {'ratio':>6}"
      "   CPU seconds while ingesting")
for i, p in enumerate(pairs, 1):
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in p["cpu_seconds_while_ingesting"].items())
    print(f"{i:>3} {p['ingest_clicks_per_second']:>12,} c/s {clicks / p['loadgen_produce_seconds']:>10,.0f}"
          f"  {p['kafka_producer_perf_records_per_second']:>16,.0f} r/s {p['ratio']:>6.3f}   {cpu}")
print(f"ingest_vs_kafka_producer = {ratio:.3f}   (median of {runs} pairs; target >= 0.5)")
json.dump({"benchmark": "clicks", "clicks": clicks, "partitions": partitions,
           "analytics_flags": flags, "record_bytes": size, "runs": pairs,
           "ratios": {"ingest_vs_kafka_producer": round(ratio, 4)}},
          open(out, "w"), indent=2)
PY

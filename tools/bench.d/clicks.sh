#!/usr/bin/env bash
# tools/bench clicks: click ingestion end to end — M click events published to a fresh topic (by
# kurt-clicks-loadgen, an idempotent acks=all librdkafka producer like the links service's) and
# consumed by kurt-analytics into raw clicks + hourly aggregates + offsets; the clock runs from the
# first produce to the moment the aggregates hold all M — beside Kafka's ProducerPerformance (from
# the broker's jars) publishing M records of the same size to a topic with the same settings, with
# the same producer settings, in one run.
# Writes $KURT_STATE_DIR/bench/clicks.json (ratio ingest_vs_kafka_producer; target >= 0.5).
# Knobs: KURT_BENCH_CLICKS (1000000), KURT_BENCH_PARTITIONS (3), KURT_BENCH_BATCH (10000).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

clicks=${KURT_BENCH_CLICKS:-1000000}
partitions=${KURT_BENCH_PARTITIONS:-3}
batch=${KURT_BENCH_BATCH:-10000}
links=1000
run=$(date +%s)$$
db=kurt_bench_clicks_$run
topic=kurt.bench.clicks.$run
perf_topic=kurt.bench.producer-perf.$run
group=kurt-bench-analytics-$run
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
cleanup() {
  [ -n "$analytics_pid" ] && kill "$analytics_pid" 2>/dev/null && wait "$analytics_pid" 2>/dev/null
  psql -qX "$KURT_PG_PRIMARY_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  "$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --delete \
    --topic "$topic|$perf_topic|$topic.dlq" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A database and topics of this run's own.
psql -qX "$KURT_PG_PRIMARY_URL" -c "CREATE DATABASE $db"
"$KURT_BUILD_DIR/bin/kurt-migrate" --pg_primary_url="$primary" >"$work/migrate.log" 2>&1 ||
  die "migrations failed: $(tail -n 3 "$work/migrate.log")"
psql -qX -v ON_ERROR_STOP=1 "$primary" -c "INSERT INTO links (code, account_id, target_url)
  SELECT 'bench' || i, 'bench-clicks', 'https://example.com/' || i FROM generate_series(1, $links) i"
for t in "$topic" "$perf_topic" "$topic.dlq"; do
  "$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --create \
    --topic "$t" --partitions "$partitions" --replication-factor 1 >/dev/null
done

# The consumer joins its group first: the clock measures ingestion, not start-up.
"$KURT_BUILD_DIR/bin/kurt-analytics" --pg_primary_url="$primary" --pg_replica_url="$replica" \
  --kafka_brokers="$KURT_KAFKA_BROKERS" --clicks_topic="$topic" --dlq_topic="$topic.dlq" \
  --group_id="$group" --grpc_port=0 --metrics_port=-1 --batch_max_messages="$batch" \
  >"$work/analytics.log" 2>&1 &
analytics_pid=$!
for _ in $(seq 300); do
  grep -q '"partitions assigned"' "$work/analytics.log" && break
  kill -0 "$analytics_pid" 2>/dev/null || die "kurt-analytics exited: $(tail -n 3 "$work/analytics.log")"
  sleep 0.1
done
grep -q '"partitions assigned"' "$work/analytics.log" || die "kurt-analytics did not join its group"

counted() { psql -qtAX "$primary" -c "SELECT COALESCE(sum(clicks), 0) FROM click_hourly"; }
now() { date +%s.%N; }

echo "ingesting $clicks clicks through kurt-analytics ($partitions partitions, batches of $batch) ..." >&2
t0=$(now)
"$KURT_BUILD_DIR/bin/kurt-clicks-loadgen" --kafka_brokers="$KURT_KAFKA_BROKERS" --topic="$topic" \
  --count="$clicks" --code_prefix=bench --codes=$links --log_level=warn >"$work/loadgen.json" &
loadgen_pid=$!
seen=0
deadline=$((SECONDS + 600))
while [ "$seen" -lt "$clicks" ]; do
  [ $SECONDS -lt $deadline ] || die "only $seen of $clicks clicks counted within 10 minutes"
  sleep 0.05
  seen=$(counted)
done
t1=$(now)
wait "$loadgen_pid" || die "the load generator failed"
raw=$(psql -qtAX "$primary" -c "SELECT count(*) FROM clicks")
[ "$raw" -eq "$clicks" ] && [ "$(counted)" -eq "$clicks" ] ||
  die "counted $(counted) clicks and $raw raw rows for $clicks published"
kill "$analytics_pid"
wait "$analytics_pid" 2>/dev/null || true
analytics_pid=
record_size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value_bytes"])' \
  "$work/loadgen.json")

# Kafka's own producer, same record count and size, the same producer settings as Kurt's
# (platform/kafka.cc ProducerConfig), to a topic with the same partitions.
echo "ProducerPerformance: $clicks records of $record_size bytes ..." >&2
"$KURT_ROOT/tools/kafka" producer-perf --topic "$perf_topic" --num-records "$clicks" \
  --record-size "$record_size" --throughput -1 --producer-props \
  bootstrap.servers="$KURT_KAFKA_BROKERS" acks=all enable.idempotence=true linger.ms=5 \
  compression.type=lz4 >"$work/perf.log" 2>&1 || die "ProducerPerformance failed: $(tail -n 3 "$work/perf.log")"

python3 - "$out/clicks.json" "$clicks" "$partitions" "$batch" "$record_size" "$t0" "$t1" \
  "$work/loadgen.json" "$work/perf.log" <<'PY'
import json, re, sys
out, clicks, partitions, batch, size, t0, t1, loadgen, perf = sys.argv[1:]
clicks, partitions, batch, size = int(clicks), int(partitions), int(batch), int(size)
seconds = float(t1) - float(t0)
ingest = clicks / seconds
produced = json.load(open(loadgen))
produce_rate = clicks / produced["seconds"]
# The summary line: "1000000 records sent, 254323.4 records/sec (24.25 MB/sec), ..."
summary = [l for l in open(perf) if "records sent" in l][-1]
kafka_rate = float(re.search(r"([\d.]+) records/sec", summary).group(1))
ratio = ingest / kafka_rate
print(f"{clicks:,} clicks, {size}-byte events, {partitions} partitions, acks=all idempotent lz4:")
print(f"{'':54} {'clicks/s':>10} {'seconds':>8}")
print(f"{'kurt: produce -> counted in the aggregates (end to end)':54} {ingest:>10,.0f} {seconds:>8.2f}")
print(f"{'  of which kurt-clicks-loadgen producing':54} {produce_rate:>10,.0f} {produced['seconds']:>8.2f}")
print(f"{'Kafka ProducerPerformance (same size and settings)':54} {kafka_rate:>10,.0f} {clicks / kafka_rate:>8.2f}")
print(f"ingest_vs_kafka_producer = {ratio:.3f}   (target >= 0.5)")
json.dump({"benchmark": "clicks", "clicks": clicks, "partitions": partitions,
           "batch_max_messages": batch, "record_bytes": size,
           "ingest_seconds": round(seconds, 3), "ingest_clicks_per_second": round(ingest),
           "loadgen_produce_seconds": round(produced["seconds"], 3),
           "kafka_producer_perf_records_per_second": kafka_rate,
           "kafka_producer_perf_summary": summary.strip(),
           "ratios": {"ingest_vs_kafka_producer": round(ratio, 4)}},
          open(out, "w"), indent=2)
PY

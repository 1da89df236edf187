# shellcheck shell=bash disable=SC2154 # $work comes from the benchmark that sources this
# Sourced by the benchmarks in tools/bench.d/ that run Kurt's binaries themselves: the processes
# they start (stopped, and $work removed, on exit), waiting for a server, and the data they share.
# Needs $work (a scratch directory) and, for bench_seed, the stack's environment.

pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap bench_cleanup EXIT

wait_http() { # URL: until it answers (any status), at most 30 s
  for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$1 did not come up"
}

bench_seed() { # PREFIX ACCOUNT COUNT TOPIC: links PREFIX1..PREFIXCOUNT of ACCOUNT, and the topic
  psql -q "$KURT_PG_PRIMARY_URL" -c "INSERT INTO links (code, account_id, target_url)
    SELECT '$1' || i, '$2', 'https://example.com/landing/' || i
    FROM generate_series(1, $3) i ON CONFLICT (code) DO NOTHING" >/dev/null
  "$KURT_ROOT/tools/kafka" topics --bootstrap-server "$KURT_KAFKA_BROKERS" --create \
    --if-not-exists --topic "$4" --partitions 3 --replication-factor 1 >/dev/null 2>&1 || true
}

# shellcheck shell=bash disable=SC2034 # the variables are the benchmark's, which sources this
# Sourced by the benchmarks in tools/bench.d/: the knobs they share, from the environment.

bench_knobs() { # CONNECTIONS HOT_CODES (the defaults): sets seconds, runs, connections, hot
  seconds=${KURT_BENCH_SECONDS:-5}
  runs=${KURT_BENCH_RUNS:-3}
  [ "$runs" -ge 1 ] 2>/dev/null || die "KURT_BENCH_RUNS must be a number of at least 1"
  connections=${KURT_BENCH_CONNECTIONS:-$1}
  hot=${KURT_BENCH_HOT_CODES:-$2}
}

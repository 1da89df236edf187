# shellcheck shell=bash disable=SC2034 # the variables are the benchmark's, which sources this
# Sourced by the benchmarks in tools/bench.d/: the knobs they share, from the environment.

bench_knobs() { # CONNECTIONS HOT_CODES [RUNS] (the defaults; RUNS 3): sets seconds, runs,
  # connections, hot
  seconds=${KURT_BENCH_SECONDS:-5}
  runs=${KURT_BENCH_RUNS:-${3:-3}}
  [ "$runs" -ge 1 ] 2>/dev/null || die "KURT_BENCH_RUNS must be a number of at least 1"
  connections=${KURT_BENCH_CONNECTIONS:-$1}
  hot=${KURT_BENCH_HOT_CODES:-$2}
}

bench_stack() { # BINARY...: builds them (unless KURT_SKIP_BUILD=1: the binaries as built) and
  # uses the running stack when its environment is set (KURT_PG_PRIMARY_URL), else starts it
  if [ "${KURT_SKIP_BUILD:-}" = 1 ]; then
    local binary
    for binary in "$@"; do
      [ -x "$KURT_BUILD_DIR/bin/$binary" ] || die "KURT_SKIP_BUILD=1, but $binary is not built" \
        "($KURT_BUILD_DIR/bin/$binary): run tools/build $*, or unset KURT_SKIP_BUILD"
    done
  else
    "$KURT_ROOT/tools/build" "$@"
  fi
  if [ -z "${KURT_PG_PRIMARY_URL:-}" ]; then
    "$KURT_ROOT/tools/stack" up >/dev/null
    set -a
    # shellcheck disable=SC1091 # written by tools/stack
    . "$KURT_STATE_DIR/stack.env"
    set +a
  fi
}

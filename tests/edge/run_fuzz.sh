#!/usr/bin/env bash
# Builds the edge's libFuzzer target with clang and runs it for a bounded time.
# Usage: tests/edge/run_fuzz.sh [seconds]   (default 60; crashes land in $KURT_STATE_DIR/fuzz/edge)
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"

seconds=${1:-60}
build=${KURT_FUZZ_BUILD_DIR:-$KURT_ROOT/build-fuzz}
googleapis=$KURT_STATE_DIR/deps/googleapis
[ -f "$googleapis/google/api/annotations.proto" ] || die "run tools/bootstrap first (googleapis protos)"
apt_install clang-14 libclang-rt-14-dev  # the sanitizers' runtime and headers, not only the compiler

cmake -S "$KURT_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 -DKURT_FUZZ=ON -DKURT_GOOGLEAPIS_DIR="$googleapis" >/dev/null
ninja -C "$build" -j2 edge_fuzz >&2

work=$KURT_STATE_DIR/fuzz/edge
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$KURT_ROOT"/tests/edge/fuzz_corpus/* "$work/corpus/" 2>/dev/null || true
log "fuzzing the edge's router and transcoder for ${seconds}s"
"$build/bin/edge_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 15

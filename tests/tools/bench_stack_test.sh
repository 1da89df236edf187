#!/usr/bin/env bash
# tools/bench's bench_stack with KURT_SKIP_BUILD=1: a binary the benchmark needs and that is not
# built stops it with a message naming the binary and the command that builds it (it used to run
# on and exit 127 without a word).
# Usage: tests/tools/bench_stack_test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
mkdir -p "$build/bin"
printf '#!/bin/sh\n' >"$build/bin/kurt-links"
chmod +x "$build/bin/kurt-links"

set +e
out=$(KURT_SKIP_BUILD=1 KURT_BUILD_DIR=$build KURT_PG_PRIMARY_URL=set bash -c '
  . "$1/tools/lib.sh"
  . "$1/tools/bench.d/lib/knobs.sh"
  bench_stack kurt-links kurt-migrate kurt-edge
  echo "bench_stack returned"' _ "$root" 2>&1)
rc=$?
set -e
fail() { echo "FAIL: $*" >&2; echo "$out" >&2; exit 1; }
[ "$rc" = 1 ] || fail "exit status $rc, not 1"
grep -q "kurt-migrate is not built" <<<"$out" || fail "kurt-migrate not named"
grep -q "tools/build kurt-links kurt-migrate kurt-edge" <<<"$out" || fail "no command to build it"
if grep -q "bench_stack returned" <<<"$out"; then fail "bench_stack went on"; fi

# Every binary there: it goes on without building.
printf '#!/bin/sh\n' >"$build/bin/kurt-migrate"
printf '#!/bin/sh\n' >"$build/bin/kurt-edge"
chmod +x "$build/bin/kurt-migrate" "$build/bin/kurt-edge"
out=$(KURT_SKIP_BUILD=1 KURT_BUILD_DIR=$build KURT_PG_PRIMARY_URL=set bash -c '
  . "$1/tools/lib.sh"
  . "$1/tools/bench.d/lib/knobs.sh"
  bench_stack kurt-links kurt-migrate kurt-edge
  echo "bench_stack returned"' _ "$root" 2>&1) || fail "failed with every binary built"
grep -q "bench_stack returned" <<<"$out" || fail "bench_stack did not return"
echo "ok"

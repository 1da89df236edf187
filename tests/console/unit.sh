#!/usr/bin/env bash
# The console's own checks, fast: npm ci from the committed lock file (when it changed), the type
# check (tsc --noEmit), vitest (the API client, the SSE parser, the pages on a fake API), and the
# production build, which fails when the first load's JavaScript passes its 150 kB budget.
# Usage: tests/console/unit.sh
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"
. "$KURT_ROOT/tools/console.sh"

console_build
cd "$KURT_CONSOLE_DIR"
npm run --silent check
npx vitest run
npm run --silent build

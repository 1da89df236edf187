#!/usr/bin/env bash
# End to end: the console in Debian's Chromium (playwright-core) against the running system,
# through the console's nginx (console/e2e/console.e2e.mjs says what it does), with axe-core on
# every page; screenshots in $KURT_CONSOLE_SCREENSHOTS (ctest: build/console-screenshots/).
# With KURT_EDGE_URL set (e.g. from a running system's .kurt/env) it tests that system, through
# KURT_CONSOLE_URL or a console nginx of its own; else it starts one with `tools/run --detach`
# and stops Kurt's binaries and the console after.
# Usage: tests/e2e/console_e2e.sh
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"
. "$KURT_ROOT/tools/services.sh"
. "$KURT_ROOT/tools/console.sh"

apt_install chromium
console_build
if [ -z "${KURT_EDGE_URL:-}" ]; then
  KURT_SKIP_BUILD=1 "$KURT_ROOT/tools/run" --detach >/dev/null
  trap 'console_stop; services_stop' EXIT
  set -a
  . "$KURT_STATE_DIR/env"
  set +a
elif [ -z "${KURT_CONSOLE_URL:-}" ]; then
  console_start "$KURT_EDGE_URL"
  trap console_stop EXIT
fi
export KURT_CONSOLE_SCREENSHOTS=${KURT_CONSOLE_SCREENSHOTS:-$KURT_BUILD_DIR/console-screenshots}
start=$SECONDS
(cd "$KURT_CONSOLE_DIR" && node --test --test-reporter=spec e2e/console.e2e.mjs)
echo "console end to end passed in $((SECONDS - start)) s; screenshots: $KURT_CONSOLE_SCREENSHOTS"

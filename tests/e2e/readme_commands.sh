#!/usr/bin/env bash
# The README's commands against a running system (tools/run), as written: every ```sh block of
# README.md that reads .kurt/env and holds no placeholder (…) runs in bash -e from a directory
# whose tools/ and .kurt/ are this checkout's, and must succeed. Together they must have answered
# /healthz, listed kurt-links' services and created a link over gRPC with the edge's secret
# (the grpcurl example), so that the blocks cannot silently stop being run.
# Usage: tests/e2e/readme_commands.sh   (run by tests/e2e/run_smoke.sh after tools/run --detach)
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -s "$KURT_STATE_DIR/env" ] || fail "$KURT_STATE_DIR/env is missing: start the system (tools/run)"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$KURT_ROOT/tools" "$dir/tools"
ln -s "$KURT_STATE_DIR" "$dir/.kurt"
mkdir "$dir/blocks"
python3 - "$KURT_ROOT/README.md" "$dir/blocks" <<'PY'
import pathlib, re, sys
readme, out = sys.argv[1], pathlib.Path(sys.argv[2])
n = 0
for block in re.findall(r"^```sh\n(.*?)^```", pathlib.Path(readme).read_text(), re.S | re.M):
    if ". .kurt/env" in block and "…" not in block:
        n += 1
        (out / f"{n:02d}.sh").write_text(block)

PY
all=""
for block in "$dir"/blocks/*.sh; do
  [ -e "$block" ] || fail "README.md has no runnable block that reads .kurt/env"
  echo "--- README block:"; cat "$block"
  out=$(cd "$dir" && env -u KURT_EDGE_SECRET -u KURT_ADMIN_TOKEN bash -e -o pipefail "$block" 2>&1) ||
    fail "README block failed:
$(cat "$block")
--- its output:
$out"
  echo "$out"
  all+=$out$'\n'
done
grep -q '^HTTP/1.1 200' <<<"$all" || fail "no README block got 200 from /healthz"
grep -qx 'kurt.links.v1.LinksService' <<<"$all" || fail "no README block listed kurt.links.v1.LinksService"
grep -q '"short_url"' <<<"$all" || fail "no README block created a link over gRPC"
echo "README commands: $(ls "$dir/blocks" | wc -l) blocks ran as written"

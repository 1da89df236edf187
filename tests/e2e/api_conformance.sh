#!/usr/bin/env bash
# End to end: schemathesis (PyPI, pinned; installed once into $KURT_TOOLS_DIR) tests the running
# system through its edge against the edge's own OpenAPI document, with a real account's API key:
# no 5xx, every status and response body as documented, data the document allows is accepted,
# and no operation mostly refuses it (schemathesis' "validation mismatch" warning). The rules
# a schema cannot state are kept by tests/e2e/schemathesis_hooks.py. Bounded: a few examples per
# operation, well under two minutes.
# With KURT_EDGE_URL and KURT_ADMIN_TOKEN set (e.g. from a running system's .kurt/env) it tests
# that system; else it starts one with `tools/run --detach` and stops Kurt's binaries (and the
# console's nginx) after.
# Usage: tests/e2e/api_conformance.sh
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"
. "$KURT_ROOT/tools/services.sh"
. "$KURT_ROOT/tools/console.sh"

SCHEMATHESIS_VERSION=4.32.5

fail() { echo "FAIL: $*" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

venv=$KURT_TOOLS_DIR/venv-schemathesis-$SCHEMATHESIS_VERSION
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  log "installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" >&2 || {
    rm -rf "$venv"
    fail "could not install schemathesis $SCHEMATHESIS_VERSION"
  }
fi

if [ -z "${KURT_EDGE_URL:-}" ]; then
  KURT_SKIP_BUILD=1 "$KURT_ROOT/tools/run" --detach >/dev/null
  trap 'console_stop; services_stop' EXIT
  set -a
  . "$KURT_STATE_DIR/env"
  set +a
fi
[ -n "${KURT_ADMIN_TOKEN:-}" ] || fail "KURT_ADMIN_TOKEN is not set"

account=$(curl -sf -X POST -H "Authorization: Bearer $KURT_ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name": "api conformance"}' \
  "$KURT_EDGE_URL/v1/accounts") || fail "POST /v1/accounts with the admin token"
export KURT_API_KEY KURT_API_KEY_ID KURT_ADMIN_TOKEN
KURT_API_KEY=$(field '["secretKey"]' <<<"$account")
KURT_API_KEY_ID=$(field '["key"]["id"]' <<<"$account")
# A person's session, for the one route that takes a session token and no API key (sign-out).
person=$(curl -sf -X POST -H 'content-type: application/json' \
  -d "{\"email\": \"conformance-$RANDOM$RANDOM@example.org\", \"password\": \"correct horse\"}" \
  "$KURT_EDGE_URL/v1/signup") || fail "POST /v1/signup (tools/run opens sign-up)"
export KURT_SESSION_TOKEN
KURT_SESSION_TOKEN=$(field '["session"]["sessionToken"]' <<<"$person")
# Every operation of the document but the document itself, which schemathesis leaves out.
operations=$(curl -sf "$KURT_EDGE_URL/v1/openapi.json" | python3 -c 'import json, sys
print(sum(m in ("get", "head", "put", "post", "patch", "delete") for path, ops in json.load(sys.stdin)["paths"].items()
          if path != "/v1/openapi.json" for m in ops))')

out=$KURT_STATE_DIR/api-conformance
mkdir -p "$out"
start=$SECONDS
rc=0
# From $out, where schemathesis keeps its cache (.schemathesis/).
(cd "$out" && SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=$KURT_ROOT/tests/e2e \
  "$venv/bin/schemathesis" --config-file "$KURT_ROOT/tests/e2e/schemathesis.toml" \
  run "$KURT_EDGE_URL/v1/openapi.json" --phases examples,coverage,fuzzing \
  --report junit --report-dir "$out" --no-color) >"$out/output.txt" 2>&1 || rc=$?
cat "$out/output.txt"
[ "$rc" = 0 ] || fail "schemathesis found problems (exit $rc; $out/output.txt)"
grep -q "Tested: $operations\$" "$out/output.txt" ||
  fail "schemathesis did not test every operation of the document ($operations)"
# The operations schemathesis found mostly refusing data their schema allows; only the cancel of
# a report may be listed, whose 400s are the finished reports', and batchCreate, whose 400s are a
# requestId sent before with other links (tests/e2e/schemathesis.toml).
mismatched=$(sed -n '/^Schema validation mismatch/,/^💡/p' "$out/output.txt" | sed -n 's/^  - //p' |
  grep -vxF -e 'POST /v1/reports/{id}:cancel' -e 'POST /v1/links:batchCreate' || true)
[ -z "$mismatched" ] || fail "operations mostly refuse data their schema allows: $mismatched"
echo "api conformance passed in $((SECONDS - start)) s"

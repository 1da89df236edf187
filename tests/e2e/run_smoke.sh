#!/usr/bin/env bash
# End to end: `tools/run --detach` brings up the whole system; grpcurl lists a running service's
# services through reflection, and grpc_health_probe (the standard gRPC health client; gRPC's
# built-in health service has no descriptor for grpcurl to use) says it is SERVING; the edge
# redirects a link created through gRPC; `tools/stack down` then leaves no process of ours.
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }

grpcurl=$(go_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4)
health_probe=$(go_tool grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe@v0.4.61)

KURT_SKIP_BUILD=1 "$KURT_ROOT/tools/run" --detach
set -a
. "$KURT_STATE_DIR/env"
set +a
[ -n "$KURT_ADMIN_TOKEN" ] || fail ".kurt/env has no KURT_ADMIN_TOKEN"

services=$("$grpcurl" -plaintext 127.0.0.1:7101 list)
echo "$services"
for s in kurt.links.v1.LinksService grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection; do
  grep -qx "$s" <<<"$services" || fail "reflection does not list $s"
done
health=$("$health_probe" -addr 127.0.0.1:7101 2>&1) || fail "links health: $health"
echo "$health"
grep -q 'status: SERVING' <<<"$health" || fail "links is not SERVING"

# tools/run gives every service the edge's secret: an account named without it is refused.
edge_secret=$(cat "$KURT_STATE_DIR/edge_secret")
if refused=$("$grpcurl" -plaintext -H 'x-kurt-account-id: smoke-test' \
    -d '{"target_url": "https://example.com/forged"}' 127.0.0.1:7101 \
    kurt.links.v1.LinksService/CreateLink 2>&1); then
  fail "links believed x-kurt-account-id without x-kurt-edge-secret"
fi
grep -q 'Unauthenticated' <<<"$refused" || fail "links without the edge secret: $refused"
link=$("$grpcurl" -plaintext -H 'x-kurt-account-id: smoke-test' \
  -H "x-kurt-edge-secret: $edge_secret" -d '{"target_url": "https://example.com/smoke"}' \
  127.0.0.1:7101 kurt.links.v1.LinksService/CreateLink)
code=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])' <<<"$link")
if [ -x "$KURT_BUILD_DIR/bin/kurt-edge" ]; then
  curl -sf "$KURT_EDGE_URL/healthz" >/dev/null || fail "edge /healthz"
  location=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$KURT_EDGE_URL/$code")
  [ "$location" = "302 https://example.com/smoke" ] || fail "GET /$code gave '$location'"
  echo "edge: GET /$code -> $location"

  # The REST API with an API key: no key is 401; the admin token makes an account whose key
  # creates a link that redirects.
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"targetUrl": "https://example.com/rest"}' "$KURT_EDGE_URL/v1/links")
  [ "$status" = 401 ] || fail "POST /v1/links without a key gave $status"
  account=$(curl -sf -X POST -H "Authorization: Bearer $KURT_ADMIN_TOKEN" \
    -H 'content-type: application/json' -d '{"name": "smoke"}' "$KURT_EDGE_URL/v1/accounts") ||
    fail "POST /v1/accounts with the admin token"
  key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secretKey"])' <<<"$account")
  created=$(curl -sf -X POST -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"targetUrl": "https://example.com/rest"}' "$KURT_EDGE_URL/v1/links") ||
    fail "POST /v1/links with a key"
  rest_code=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])' <<<"$created")
  location=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$KURT_EDGE_URL/$rest_code")
  [ "$location" = "302 https://example.com/rest" ] || fail "GET /$rest_code gave '$location'"
  echo "edge: account, key, POST /v1/links, GET /$rest_code -> $location"
fi

# The manifests' probes ask the running binaries for what they really serve.
# (PyYAML: from tools/check-deploy's venv when it exists, else Debian's python3-yaml.)
py=$KURT_TOOLS_DIR/venv-deploy/bin/python
if [ ! -x "$py" ]; then
  py=python3
  "$py" -c 'import yaml' 2>/dev/null || apt_install python3-yaml
fi
probes=$(cd "$KURT_ROOT" && "$py" -m unittest discover -s tests/deploy \
  -k test_running_stack_serves_the_probed_paths 2>&1) || fail "deploy probes: $probes"
grep -q skipped <<<"$probes" && fail "deploy probe test found no running binary"
echo "deploy manifests' probe paths answer on the running binaries"

"$KURT_ROOT/tools/stack" down
left=$( (pgrep -af -- "$KURT_STATE_DIR" ; pgrep -af -- "$KURT_BUILD_DIR/bin/kurt-";
        pgrep -af -- "redis-server 127.0.0.1:$KURT_REDIS_PORT") | grep -v pgrep || true)
[ -z "$left" ] || fail "processes left after tools/stack down: $left"
echo "tools/stack down left no process of ours"

# Leave the stack as tools/test found it.
if [ "${KURT_TEST_STACK_STARTED:-true}" = false ]; then "$KURT_ROOT/tools/stack" up >/dev/null; fi
echo "e2e smoke passed"

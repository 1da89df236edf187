#!/usr/bin/env bash
# End to end: `tools/run --detach` brings up the whole system (every binary must be built) with
# mutual TLS on every gRPC port; grpcurl, refused in plaintext and without a certificate, lists a
# running service's services through reflection with the local CA's certificate, and grpc_health_probe (the standard gRPC
# health client; gRPC's built-in health service has no descriptor for grpcurl to use) says it is
# SERVING. Then as a client would: the admin token creates an account over REST, and its API key
# creates a link, reads it and follows its redirect through the edge. Over gRPC, a call naming that
# account is refused without the edge's secret and served with it (the secret from .kurt/env), and
# the link it creates is the account's; the README's commands run as written
# (tests/e2e/readme_commands.sh). `tools/stack down` then leaves no process of ours.
set -euo pipefail
. "$(dirname "$0")/../../tools/lib.sh"
. "$KURT_ROOT/tools/services.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
# field PATH <<<JSON: one value of a JSON document, e.g. field '["account"]["id"]'.
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# tools/run starts whichever binaries were built; this test wants the whole system, so a missing
# one fails it instead of shrinking it.
for entry in "${KURT_BINARIES[@]}" kurt-migrate; do
  bin=${entry%%:*}
  [ -x "$KURT_BUILD_DIR/bin/$bin" ] || fail "$KURT_BUILD_DIR/bin/$bin is not built"
done

grpcurl=$(go_tool grpcurl "$KURT_GRPCURL_MODULE")
health_probe=$(go_tool grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe@v0.4.61)

KURT_SKIP_BUILD=1 "$KURT_ROOT/tools/run" --detach
set -a
. "$KURT_STATE_DIR/env"
set +a
[ -n "${KURT_ADMIN_TOKEN:-}" ] || fail ".kurt/env has no KURT_ADMIN_TOKEN"
[ -n "${KURT_EDGE_SECRET:-}" ] || fail ".kurt/env has no KURT_EDGE_SECRET"

# Every gRPC port takes only mutual TLS (tools/run, tools/certs): plaintext and a client without
# a certificate are refused; the local CA's kurt-cli certificate (what tools/grpcurl presents) is
# served.
certs=$KURT_STATE_DIR/certs
tls=(-cacert "$certs/ca.crt" -cert "$certs/kurt-cli.crt" -key "$certs/kurt-cli.key")
if out=$("$grpcurl" -plaintext 127.0.0.1:7101 list 2>&1); then
  fail "links answered plaintext gRPC: $out"
fi
if out=$("$grpcurl" -cacert "$certs/ca.crt" 127.0.0.1:7101 list 2>&1); then
  fail "links answered a client without a certificate: $out"
fi
echo "links refuses plaintext gRPC and clients without a certificate"
services=$("$grpcurl" "${tls[@]}" 127.0.0.1:7101 list)
echo "$services"
for s in kurt.links.v1.LinksService grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection; do
  grep -qx "$s" <<<"$services" || fail "reflection does not list $s"
done
health=$("$health_probe" -addr 127.0.0.1:7101 -tls -tls-ca-cert "$certs/ca.crt" \
  -tls-client-cert "$certs/kurt-cli.crt" -tls-client-key "$certs/kurt-cli.key" 2>&1) ||
  fail "links health: $health"
echo "$health"
grep -q 'status: SERVING' <<<"$health" || fail "links is not SERVING"

# The REST API with a real API key. No key is 401; the admin token makes an account.
curl -sf "$KURT_EDGE_URL/healthz" >/dev/null || fail "edge /healthz"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
  -d '{"targetUrl": "https://example.com/rest"}' "$KURT_EDGE_URL/v1/links")
[ "$status" = 401 ] || fail "POST /v1/links without a key gave $status"
account=$(curl -sf -X POST -H "Authorization: Bearer $KURT_ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name": "smoke"}' "$KURT_EDGE_URL/v1/accounts") ||
  fail "POST /v1/accounts with the admin token"
key=$(field '["secretKey"]' <<<"$account") || fail "POST /v1/accounts gave $account"
account_id=$(field '["account"]["id"]' <<<"$account") || fail "POST /v1/accounts gave $account"
with_key=(-H "Authorization: Bearer $key")
# expect_link CODE TARGET: the key reads link CODE with its target, and GET /CODE redirects there
# (a public route: no key).
expect_link() {
  local got location
  got=$(curl -sf "${with_key[@]}" "$KURT_EDGE_URL/v1/links/$1") ||
    fail "GET /v1/links/$1 with the account's key"
  [ "$(field '["targetUrl"]' <<<"$got")" = "$2" ] || fail "GET /v1/links/$1 gave $got"
  location=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$KURT_EDGE_URL/$1")
  [ "$location" = "302 $2" ] || fail "GET /$1 gave '$location'"
  echo "GET /v1/links/$1 and GET /$1 -> $location"
}

# The key creates a link and reads it back; anyone follows its redirect.
created=$(curl -sf -X POST "${with_key[@]}" -H 'content-type: application/json' \
  -d '{"targetUrl": "https://example.com/rest"}' "$KURT_EDGE_URL/v1/links") ||
  fail "POST /v1/links with a key"
code=$(field '["code"]' <<<"$created")
expect_link "$code" https://example.com/rest

# gRPC straight to links: naming the account without the edge's secret is refused (tools/run
# gives every binary the secret in .kurt/env); with it, the call acts for that account, whose
# key then reads the link over REST.
if refused=$("$grpcurl" "${tls[@]}" -H "x-kurt-account-id: $account_id" \
    -d '{"target_url": "https://example.com/forged"}' 127.0.0.1:7101 \
    kurt.links.v1.LinksService/CreateLink 2>&1); then
  fail "links believed x-kurt-account-id without x-kurt-edge-secret"
fi
grep -q 'Unauthenticated' <<<"$refused" || fail "links without the edge secret: $refused"
link=$("$grpcurl" "${tls[@]}" -H "x-kurt-account-id: $account_id" \
  -H "x-kurt-edge-secret: $KURT_EDGE_SECRET" -d '{"target_url": "https://example.com/grpc"}' \
  127.0.0.1:7101 kurt.links.v1.LinksService/CreateLink) || fail "CreateLink with the edge secret"
expect_link "$(field '["code"]' <<<"$link")" https://example.com/grpc

# The README's own commands (its grpcurl example among them) work as written.
"$KURT_ROOT/tests/e2e/readme_commands.sh" || fail "the README's commands"

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

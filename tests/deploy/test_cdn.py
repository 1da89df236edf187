"""The console's way in, end to end: CloudFront (infra/terraform/modules/cdn) on the console's domain
sends /v1/* to the ingress (deploy/, rendered prod overlay) under a host the ingress has a rule and
a certificate for (CloudFront replaces the viewer's Host with the origin's name), its own aliases are
covered by its us-east-1 certificate, the API behaviours pass Authorization and query strings on and
never cache an event stream, the edge's CORS origins and public URLs name the same hosts as
terraform.tfvars.example, and tools/deploy-console uploads index.html last.

Terraform is read as text (no provider here for a plan), like test_terraform.py; the manifests are
rendered like test_deploy.py (KURT_DEPLOY_RENDERED, or kustomize from tools/check-deploy).
    python3 -m unittest discover -s tests/deploy -p test_cdn.py
"""
import fnmatch
import pathlib
import re
import shlex
import subprocess
import tempfile
import unittest

from test_deploy import render_all, yaml
from test_terraform import ROOT, attribute, blocks

CDN = ROOT / "infra" / "terraform" / "modules" / "cdn"
PROD = ROOT / "infra" / "terraform" / "envs" / "prod"
# AWS-managed CloudFront policies.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
IMMUTABLE = "public, max-age=31536000, immutable"


def nested(body, name):
    """Bodies of the `name { … }` blocks inside body (any depth), and of `dynamic "name"` blocks'
    content, each with the for_each expression (or None), in the order written."""
    out = []
    for m in re.finditer(rf'^\s*(?:{name}|dynamic "{name}")\s*\{{', body, re.M):
        depth, i = 0, m.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(body[i], 0)
            if depth == 0:
                break
            i += 1
        inner = body[m.end():i]
        if m.group(0).strip().startswith("dynamic"):
            content = nested(inner, "content")[0][0]
            out.append((content, attribute(inner, "for_each")))
        else:
            out.append((inner, None))
    return out


def string_list(expr):
    """["a", "b"] as a Python list; None if expr is not such a literal."""
    m = re.fullmatch(r"\[(.*)\]", (expr or "").strip(), re.S)
    if not m:
        return None
    return re.findall(r'"([^"]*)"', m.group(1))


def one_block(kind, name=None, where=None):
    found = [(p, n, b) for p, n, b in blocks(kind)
             if (name is None or n == name) and (where is None or (ROOT / p).parent == where)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {where}, found {len(found)}"
    return found[0]


def tfvars_example():
    values = {}
    for line in (PROD / "terraform.tfvars.example").read_text().splitlines():
        m = re.match(r'^([a-z_0-9]+)\s*=\s*"([^"]*)"\s*$', line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def resolve(expr):
    """A cdn module variable's value for the example environment: var.x in the module is the
    argument envs/prod gives it; var.y there is terraform.tfvars.example's value."""
    module = one_block("module", "cdn", PROD)[2]
    m = re.fullmatch(r"var\.([a-z_0-9]+)", expr)
    assert m, f"{expr}: expected a module variable"
    arg = attribute(module, m.group(1))
    m = re.fullmatch(r"var\.([a-z_0-9]+)", arg or "")
    assert m, f"envs/prod gives the cdn module's {expr} as {arg}, expected a variable"
    values = tfvars_example()
    assert m.group(1) in values, f"terraform.tfvars.example has no {m.group(1)}"
    return values[m.group(1)]


def locals_of(directory):
    values = {}
    for path in directory.glob("*.tf"):
        for block in re.finditer(r"^locals \{(.*?)^\}", path.read_text(), re.M | re.S):
            for m in re.finditer(r"^  ([a-z_0-9]+)\s*=\s*(.+?)\s*$", block.group(1), re.M):
                values[m.group(1)] = m.group(2)
    return values


def sse_routes():
    """(method, path) of every event stream the edge serves: a server-streaming RPC with an HTTP
    rule whose answer is not a download (google.api.HttpBody is streamed as a body, not as SSE)."""
    routes = []
    for proto in sorted((ROOT / "proto" / "kurt").rglob("*.proto")):
        if "testing" in proto.parts:
            continue
        text = proto.read_text()
        for m in re.finditer(r"rpc\s+\w+\s*\([^)]*\)\s*returns\s*\(\s*stream\s+([\w.]+)\s*\)\s*\{"
                             r"(.*?)\n  \}", text, re.S):
            if m.group(1).endswith("HttpBody"):
                continue
            rule = re.search(r'(get|post|put|patch|delete)\s*:\s*"([^"]+)"', m.group(2))
            if rule:
                routes.append((rule.group(1).upper(), rule.group(2)))
    return routes


def api_routes():
    """(method, path) of every HTTP rule in the public protos."""
    routes = []
    for proto in sorted((ROOT / "proto" / "kurt").rglob("*.proto")):
        if "testing" not in proto.parts:
            routes += [(m.group(1).upper(), m.group(2)) for m in re.finditer(
                r'\b(get|post|put|patch|delete)\s*:\s*"(/[^"]+)"', proto.read_text())]
    return routes


def cached_routes():
    """(path, max-age) of every GET route whose RPC carries (kurt.api.v1.http_cache): the edge
    answers it `Cache-Control: public, max-age=N`, which the CDN may keep."""
    routes = []
    for proto in sorted((ROOT / "proto" / "kurt").rglob("*.proto")):
        if "testing" in proto.parts:
            continue
        for m in re.finditer(r"rpc\s+\w+\s*\([^)]*\)\s*returns\s*\([^)]*\)\s*\{(.*?)\n  \}",
                             proto.read_text(), re.S):
            cache = re.search(r"\(kurt\.api\.v1\.http_cache\)\s*=\s*\{\s*max_age_seconds\s*:\s*(\d+)",
                              m.group(1))
            rule = re.search(r'get\s*:\s*"([^"]+)"', m.group(1))
            if cache and rule:
                routes.append((rule.group(1), int(cache.group(1))))
    return routes


def concrete(path):
    """A request path for a templated route: /v1/links/{code} -> /v1/links/x."""
    return re.sub(r"\{[^}]*\}", "x", path)


class Distribution:
    """The cdn module's distribution: its origins and its cache behaviours in CloudFront's order
    (ordered ones first, as written, dynamic ones expanded; then the default)."""

    def __init__(self):
        _, _, self.body = one_block('resource "aws_cloudfront_distribution"', "this", CDN)
        self.locals = locals_of(CDN)
        self.origins = {}
        for body, _ in nested(self.body, "origin"):
            origin_id = attribute(body, "origin_id")
            self.origins[self.local(origin_id)] = body
        self.behaviours = []
        for body, for_each in nested(self.body, "ordered_cache_behavior"):
            if for_each:
                patterns = string_list(self.local(for_each))
                assert patterns, f"dynamic behaviours over {for_each}: expected a literal list"
                for p in patterns:
                    self.behaviours.append((p, body))
            else:
                self.behaviours.append((attribute(body, "path_pattern").strip('"'), body))
        self.behaviours.append(("*", nested(self.body, "default_cache_behavior")[0][0]))

    def local(self, expr):
        m = re.fullmatch(r"local\.([a-z_0-9]+)", expr or "")
        return self.locals[m.group(1)] if m else expr

    def behaviour_for(self, path):
        """The behaviour CloudFront picks for a request path: the first pattern that matches."""
        for pattern, body in self.behaviours:
            if fnmatch.fnmatchcase(path, pattern):
                return pattern, body
        raise AssertionError(f"no behaviour for {path}")

    def origin_of(self, behaviour):
        return self.origins[self.local(attribute(behaviour, "target_origin_id"))]

    def policy_id(self, behaviour, kind):
        return self.local(attribute(behaviour, f"{kind}_policy_id") or "").strip('"')


def cache_policy(reference):
    """The body of the module's aws_cloudfront_cache_policy a behaviour names."""
    m = re.fullmatch(r"aws_cloudfront_cache_policy\.([a-z_0-9]+)\.id", reference)
    assert m, f"{reference}: expected one of the module's cache policies or a managed one"
    return one_block('resource "aws_cloudfront_cache_policy"', m.group(1), CDN)[2]


class CdnKeepsWhatTheEdgeMarksCacheable(unittest.TestCase):
    def test_cached_routes_are_kept_per_authorization_as_long_as_the_edge_says(self):
        cdn = Distribution()
        routes = cached_routes()
        self.assertIn(("/v1/links/{code}/qr", 86400), routes)
        for path, max_age in routes:
            with self.subTest(path=path):
                _, behaviour = cdn.behaviour_for(concrete(path))
                cache = cdn.policy_id(behaviour, "cache")
                self.assertNotEqual(cache, CACHING_DISABLED, "the CDN would never keep it")
                policy = cache_policy(cache)
                # Kept per API key: one caller's answer never goes to another.
                headers = nested(policy, "headers_config")[0][0]
                self.assertIn("Authorization", string_list(attribute(headers, "items")))
                self.assertEqual(attribute(policy, "min_ttl"), "0")
                self.assertGreaterEqual(int(attribute(policy, "max_ttl")), max_age,
                                        "the CDN would drop it before the edge's max-age")


class CdnOriginIsServedByTheIngress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if yaml is None:
            raise unittest.SkipTest("PyYAML is not installed (tools/check-deploy's venv has it)")
        cls.prod = render_all()["overlays-prod"]
        cls.cdn = Distribution()

    def kinds(self, kind):
        return [d for d in self.prod if d["kind"] == kind]

    def edge_origin_host(self):
        _, api = self.cdn.behaviour_for("/v1/links")
        origin = self.cdn.origin_of(api)
        return resolve(attribute(origin, "domain_name"))

    def certificates_writing(self, secret):
        """Who writes a Secret: Certificates naming it, and cert-manager's ingress-shim for an
        Ingress annotated with an issuer that names it in its TLS section."""
        writers = [("Certificate", c["metadata"]["name"], c) for c in self.kinds("Certificate")
                   if c["spec"]["secretName"] == secret]
        for ing in self.kinds("Ingress"):
            annotations = ing["metadata"].get("annotations", {})
            if any(k.startswith("cert-manager.io/") and k.endswith("issuer") for k in annotations):
                if any(t.get("secretName") == secret for t in ing["spec"].get("tls", [])):
                    writers.append(("ingress-shim", ing["metadata"]["name"], None))
        return writers

    def test_the_api_origin_is_a_host_of_every_ingress_rule_and_its_tls(self):
        host = self.edge_origin_host()
        ingresses = self.kinds("Ingress")
        self.assertTrue(ingresses)
        for ing in ingresses:
            with self.subTest(ingress=ing["metadata"]["name"], origin=host):
                rule_hosts = [r.get("host") for r in ing["spec"]["rules"]]
                self.assertIn(host, rule_hosts, "CloudFront sends this Host; no rule takes it")
                tls_hosts = [h for t in ing["spec"].get("tls", []) for h in t.get("hosts", [])]
                self.assertIn(host, tls_hosts, "no certificate for the host CloudFront checks")

    def test_every_ingress_certificate_is_public_names_its_hosts_and_has_one_writer(self):
        issuers = {(d["kind"], d["metadata"]["name"]): d["spec"] for d in self.prod
                   if d["kind"] in ("Issuer", "ClusterIssuer")}
        for ing in self.kinds("Ingress"):
            for tls in ing["spec"]["tls"]:
                secret = tls["secretName"]
                with self.subTest(ingress=ing["metadata"]["name"], secret=secret):
                    writers = self.certificates_writing(secret)
                    self.assertEqual(len(writers), 1,
                                     f"{secret} is written by {[w[:2] for w in writers]}")
                    kind, name, cert = writers[0]
                    self.assertEqual(kind, "Certificate", "the names should be stated, not implied")
                    names = set(cert["spec"].get("dnsNames", []))
                    self.assertLessEqual(set(tls["hosts"]), names)
                    self.assertLessEqual({r["host"] for r in ing["spec"]["rules"]}, names)
                    issuer = cert["spec"]["issuerRef"]
                    spec = issuers.get((issuer.get("kind", "Issuer"), issuer["name"]), {})
                    # Browsers and CloudFront trust a public CA, not Kurt's own (mtls.yaml).
                    self.assertNotIn("ca", spec, f"{secret} comes from an internal CA")
                    self.assertNotIn("selfSigned", spec, f"{secret} is self-signed")
                    self.assertIn("server auth", cert["spec"].get("usages", ["server auth"]))

    def test_event_streams_reach_the_streaming_ingress(self):
        host = self.edge_origin_host()
        routes = sse_routes()
        self.assertTrue(routes, "no event stream found in proto/kurt")
        for method, path in routes:
            with self.subTest(route=path):
                found = [ing for ing in self.kinds("Ingress")
                         for r in ing["spec"]["rules"] if r["host"] == host
                         for p in r["http"]["paths"]
                         if p["pathType"] == "Exact" and p["path"] == concrete(path)
                         or p["pathType"] == "Prefix" and p["path"] != "/"
                         and concrete(path).startswith(p["path"])]
                self.assertTrue(found, "only the buffered, 30 s ingress takes it")
                annotations = found[0]["metadata"]["annotations"]
                self.assertEqual(annotations.get("nginx.ingress.kubernetes.io/proxy-buffering"),
                                 "off")

    def test_the_edge_names_the_same_hosts(self):
        config = {d["metadata"]["name"].rsplit("-", 1)[0]: d.get("data", {})
                  for d in self.kinds("ConfigMap")}
        values = tfvars_example()
        app, short = values.get("app_domain"), values.get("short_domain")
        self.assertTrue(app and short, "terraform.tfvars.example names app_domain and short_domain")
        edge = config["kurt-edge-config"]
        self.assertIn(f"https://{app}", edge["KURT_CORS_ORIGINS"].split(","),
                      "the console's origin is not in --cors_origins")
        self.assertEqual(edge["KURT_PUBLIC_URL"], f"https://{short}")
        self.assertEqual(config["kurt-links-config"]["KURT_SHORT_URL_BASE"], f"https://{short}/")
        self.assertEqual(self.edge_origin_host(), short)


class DistributionServesTheConsoleAndItsApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cdn = Distribution()

    def test_its_aliases_are_covered_by_its_us_east_1_certificate(self):
        aliases = string_list(attribute(self.cdn.body, "aliases"))
        expressions = re.findall(r"[\w.]+", attribute(self.cdn.body, "aliases"))
        viewer = nested(self.cdn.body, "viewer_certificate")[0][0]
        arn = attribute(viewer, "acm_certificate_arn")
        m = re.fullmatch(r"aws_acm_certificate(?:_validation)?\.([a-z_0-9]+)\.(?:certificate_)?arn",
                         arn or "")
        self.assertTrue(m, f"the certificate ({arn}) is not made here, so its names are unknown")
        name = m.group(1)
        if arn.startswith("aws_acm_certificate_validation."):
            validation = one_block('resource "aws_acm_certificate_validation"', name, CDN)[2]
            name = re.fullmatch(r"aws_acm_certificate\.([a-z_0-9]+)\.arn",
                                attribute(validation, "certificate_arn")).group(1)
        cert = one_block('resource "aws_acm_certificate"', name, CDN)[2]
        self.assertEqual(attribute(cert, "provider"), "aws.us_east_1",
                         "CloudFront takes certificates from us-east-1 only")
        self.assertEqual(attribute(cert, "validation_method"), '"DNS"')
        names = {attribute(cert, "domain_name")} | set(
            re.findall(r"[\w.]+", attribute(cert, "subject_alternative_names") or ""))
        self.assertFalse(aliases, "literal aliases cannot be checked against the certificate")
        self.assertTrue(expressions)
        for alias in expressions:
            with self.subTest(alias=alias):
                self.assertTrue(alias in names or alias == f"aws_acm_certificate.{name}.domain_name",
                                f"{alias} is not one of the certificate's names {names}")
        # The alias is the console's domain, the one the edge's CORS origins hold.
        self.assertEqual(resolve(attribute(cert, "domain_name")), tfvars_example()["app_domain"])
        records = [b for _, _, b in blocks('resource "aws_route53_record"')
                   if attribute(b, "name") == attribute(cert, "domain_name")]
        self.assertTrue(any("aws_cloudfront_distribution.this.domain_name" in b for b in records),
                        "no DNS record points the console's domain at the distribution")

    def test_the_api_origin_is_https_only_by_name(self):
        _, api = self.cdn.behaviour_for("/v1/links")
        origin = self.cdn.origin_of(api)
        config = nested(origin, "custom_origin_config")[0][0]
        self.assertEqual(attribute(config, "origin_protocol_policy"), '"https-only"')
        self.assertEqual(string_list(attribute(config, "origin_ssl_protocols")), ["TLSv1.2"])
        host = resolve(attribute(origin, "domain_name"))
        self.assertNotRegex(host, r"\.elb\.|amazonaws\.com$",
                            "a load balancer's AWS name has no certificate of the ingress")
        # CloudFront gives up on a stream silent for origin_read_timeout; the edge writes a
        # keepalive comment more often.
        keepalive = re.search(r"sse_keepalive = absl::Seconds\((\d+)\)",
                              (ROOT / "edge" / "edge.h").read_text())
        self.assertLess(int(keepalive.group(1)), int(attribute(config, "origin_read_timeout")))

    def test_the_short_domain_points_at_the_load_balancer(self):
        records = [b for _, _, b in blocks('resource "aws_route53_record"')
                   if attribute(b, "name") == "var.short_domain"]
        self.assertTrue(records, "no DNS record for the short domain")
        self.assertIn("var.ingress_load_balancer_hostname", records[0])

    def test_api_calls_pass_authorization_query_and_every_method(self):
        routes = api_routes()
        self.assertGreater(len(routes), 10)
        for method, path in routes:
            if path.startswith("/v1/"):
                with self.subTest(method=method, path=path):
                    pattern, behaviour = self.cdn.behaviour_for(concrete(path))
                    self.assertNotEqual(pattern, "*", "the SPA bucket would answer it")
                    self.assertEqual(self.cdn.origin_of(behaviour),
                                     self.cdn.origin_of(self.cdn.behaviour_for("/v1/x")[1]))
                    self.assertIn(method, string_list(attribute(behaviour, "allowed_methods")))
                    request = self.cdn.policy_id(behaviour, "origin_request")
                    # Every viewer header but Host (the origin's name goes instead), every query
                    # string.
                    self.assertEqual(request, ALL_VIEWER_EXCEPT_HOST)
                    cache = self.cdn.policy_id(behaviour, "cache")
                    if cache == CACHING_DISABLED:
                        continue  # then AllViewerExceptHostHeader passes Authorization too
                    policy = cache_policy(cache)
                    headers = nested(policy, "headers_config")[0][0]
                    self.assertIn("Authorization", string_list(attribute(headers, "items")))
                    queries = nested(policy, "query_strings_config")[0][0]
                    self.assertEqual(attribute(queries, "query_string_behavior"), '"all"')

    def test_event_streams_are_never_cached(self):
        for method, path in sse_routes():
            with self.subTest(route=path):
                pattern, behaviour = self.cdn.behaviour_for(concrete(path))
                self.assertEqual(self.cdn.policy_id(behaviour, "cache"), CACHING_DISABLED,
                                 f"{pattern} may cache it")
                self.assertEqual(attribute(behaviour, "compress"), "false",
                                 "compression would hold the events back")
                self.assertEqual(self.cdn.policy_id(behaviour, "origin_request"),
                                 ALL_VIEWER_EXCEPT_HOST)

    def test_the_console_comes_from_the_private_bucket(self):
        pattern, spa = self.cdn.behaviour_for("/links/abc")
        self.assertEqual(pattern, "*")
        origin = self.cdn.origin_of(spa)
        self.assertRegex(attribute(origin, "origin_access_control_id") or "",
                         r"^aws_cloudfront_origin_access_control\.")
        self.assertNotIn("custom_origin_config", origin)
        _, _, block = one_block('resource "aws_s3_bucket_public_access_block"', "spa")
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                        "restrict_public_buckets"):
            self.assertEqual(attribute(block, setting), "true", setting)


class DeployConsoleUploadsIndexLast(unittest.TestCase):
    """tools/deploy-console --dry-run: the exact aws commands it would run."""

    def build(self, index_refs, assets, extra=()):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        dist = pathlib.Path(tmp.name)
        (dist / "assets").mkdir()
        tags = "".join(f'<script type="module" src="{r}"></script>' for r in index_refs)
        (dist / "index.html").write_text(f"<!doctype html><html><head>{tags}</head></html>")
        for a in assets:
            (dist / "assets" / a).write_text(a)
        for e in extra:
            (dist / e).write_text(e)
        return dist

    def run_tool(self, dist, *args):
        return subprocess.run([str(ROOT / "tools" / "deploy-console"), "--dry-run",
                               "--bucket", "kurt-prod-123456789012-spa", "--dist", str(dist),
                               *args], capture_output=True, text=True, timeout=60)

    @staticmethod
    def uploads(command, dist):
        """{object key: Cache-Control} a `aws s3 cp|sync` command writes, for the files in dist
        (the aws CLI's filters: relative to the source, the last matching one decides)."""
        words = shlex.split(command)
        assert words[:2] == ["aws", "s3"], command
        verb, source, dest = words[2], words[3], words[4]
        opts, filters, i = {}, [], 5
        while i < len(words):
            if words[i] in ("--exclude", "--include"):
                filters.append((words[i], words[i + 1]))
                i += 2
            elif words[i].startswith("--") and i + 1 < len(words) and \
                    not words[i + 1].startswith("--"):
                opts[words[i]] = words[i + 1]
                i += 2
            else:
                opts[words[i]] = True
                i += 1
        prefix = dest.split("/", 3)[3] if dest.count("/") >= 3 else ""
        src = pathlib.Path(source)
        files = [src] if src.is_file() else [f for f in sorted(src.rglob("*")) if f.is_file()]
        written = {}
        for f in files:
            rel = f.name if src.is_file() else str(f.relative_to(src))
            included = True
            for kind, pattern in filters:
                if fnmatch.fnmatchcase(rel, pattern):
                    included = kind == "--include"
            if included:
                key = prefix if src.is_file() and prefix and not prefix.endswith("/") \
                    else "/".join(p for p in (prefix.rstrip("/"), rel) if p)
                written[key] = opts.get("--cache-control")
        return verb, opts, written

    def test_assets_go_up_immutable_before_index_html_with_no_cache(self):
        assets = ["index-BxK3a9_z.js", "index-Df83kQ1s.css", "vendor-0a1b2c3d.js"]
        dist = self.build(["/assets/index-BxK3a9_z.js", "/assets/index-Df83kQ1s.css"], assets,
                          extra=["favicon.svg"])
        r = self.run_tool(dist)
        self.assertEqual(r.returncode, 0, r.stderr)
        commands = [c for c in r.stdout.splitlines() if c.strip()]
        self.assertTrue(commands)
        seen = {}
        for n, command in enumerate(commands):
            with self.subTest(command=command):
                self.assertNotIn("--delete", command, "old tabs still load the old assets")
                verb, opts, written = self.uploads(command, dist)
                self.assertIn(verb, ("cp", "sync"), "only uploads")
                if "index.html" in written:
                    self.assertEqual(n, len(commands) - 1, "index.html goes up last")
                    self.assertEqual(written["index.html"], "no-cache")
                    self.assertEqual(opts.get("--content-type"), "text/html; charset=utf-8")
                for key, cache_control in written.items():
                    self.assertNotIn(key, seen, "uploaded twice")
                    seen[key] = (n, cache_control)
        for a in assets:
            self.assertEqual(seen[f"assets/{a}"][1], IMMUTABLE, a)
        self.assertEqual(seen["index.html"][1], "no-cache")
        self.assertEqual(seen["favicon.svg"][1], "no-cache", "not hashed, so not immutable")
        self.assertEqual(set(seen), {f"assets/{a}" for a in assets} | {"index.html", "favicon.svg"})

    def test_an_index_naming_a_missing_asset_uploads_nothing(self):
        dist = self.build(["/assets/index-BxK3a9_z.js", "/assets/gone-12345678.js"],
                          ["index-BxK3a9_z.js"])
        r = self.run_tool(dist)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/assets/gone-12345678.js", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_an_unhashed_asset_is_refused(self):
        dist = self.build(["/assets/app.js"], ["app.js"])
        r = self.run_tool(dist)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("assets/app.js", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_bad_arguments_are_named(self):
        dist = self.build(["/assets/index-BxK3a9_z.js"], ["index-BxK3a9_z.js"])
        r = subprocess.run([str(ROOT / "tools" / "deploy-console"), "--dry-run", "--dist",
                            str(dist)], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--bucket", r.stderr)
        r = self.run_tool(dist, "--bucket", "Not_A_Bucket")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Not_A_Bucket", r.stderr)
        r = self.run_tool(pathlib.Path(dist, "nowhere"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("index.html", r.stderr)


if __name__ == "__main__":
    unittest.main()

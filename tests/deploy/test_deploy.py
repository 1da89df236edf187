"""Checks the rendered Kubernetes manifests against docs/development.md, the one source of truth for
the binaries' ports and flags: every containerPort, Service port, probe and scrape annotation must
be the port the binary serves, and every KURT_* variable or --flag the manifests pass must be a
documented flag. When the binaries are built it also asks them (--helpfull), and when a local
stack runs it probes the real /healthz and /readyz.

Run by tools/check-deploy (KURT_DEPLOY_RENDERED=<dir of rendered YAML>); on its own it renders
with the kustomize that tools/check-deploy built, and skips when there is none:
    python3 -m unittest discover -s tests/deploy
Needs PyYAML (tools/check-deploy's venv has it).
"""
import http.client
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.parse

try:
    import yaml
except ImportError:  # pragma: no cover - reported as a skip
    yaml = None

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE = pathlib.Path(os.environ.get("KURT_STATE_DIR", ROOT / ".kurt"))
BUILD = pathlib.Path(os.environ.get("KURT_BUILD_DIR", ROOT / "build"))
KUSTOMIZATIONS = ["overlays/dev", "overlays/prod", "monitoring", "ingress-nginx"]
OVERLAYS = ["overlays-dev", "overlays-prod"]


H2_PORTS = {}  # binary: its h2 port (--h2_port), for the binaries that have one


def parse_development_md():
    """Returns ({binary: (grpc_port or None, http_port or None)}, {flag names}); fills H2_PORTS."""
    text = (ROOT / "docs" / "development.md").read_text()
    binaries, flags = {}, set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        name = re.fullmatch(r"`(kurt-[a-z-]+)`", cells[0])
        if name:
            grpc = re.match(r"(\d+)", cells[1])
            http = re.match(r"(\d+)", cells[2])
            binaries[name.group(1)] = (int(grpc.group(1)) if grpc else None,
                                       int(http.group(1)) if http else None)
            h2 = re.match(r"(\d+)", cells[3]) if len(cells) > 3 else None
            if h2:
                H2_PORTS[name.group(1)] = int(h2.group(1))
        flag = re.fullmatch(r"`--([a-z0-9_]+)`", cells[0])
        if flag:
            flags.add(flag.group(1))
    return binaries, flags


def source_flags(binary):
    """Flags a binary declares itself (ABSL_FLAG in its own directory), beside the platform's."""
    if binary == "kurt-edge":
        directory = ROOT / "edge"
    elif binary == "kurt-migrate":
        directory = ROOT / "tools" / "migrate"
    else:
        directory = ROOT / "services" / binary[len("kurt-"):]
    flags = set()
    for path in directory.glob("*.cc"):
        if not path.name.endswith("_test.cc"):
            flags |= set(re.findall(r"ABSL_FLAG\(\s*[^,]+,\s*([a-z0-9_]+)\s*,", path.read_text()))
    return flags


def render_all():
    """{name: [documents]} from KURT_DEPLOY_RENDERED, or rendered here with kustomize."""
    rendered = os.environ.get("KURT_DEPLOY_RENDERED")
    tmp = None
    if not rendered:
        # tools/check-deploy builds it into $KURT_TOOLS_DIR (tools/lib.sh's go_tool).
        tools = pathlib.Path(os.environ.get(
            "KURT_TOOLS_DIR", pathlib.Path.home() / ".cache" / "kurt-tools"))
        built = sorted(tools.glob("go/kustomize@*/kustomize"))
        kustomize = str(built[-1]) if built else shutil.which("kustomize")
        if not kustomize:
            raise unittest.SkipTest("no rendered manifests and no kustomize (run tools/check-deploy)")
        tmp = tempfile.TemporaryDirectory()
        rendered = tmp.name
        for k in KUSTOMIZATIONS:
            out = subprocess.run([kustomize, "build", str(ROOT / "deploy" / k)], check=True,
                                 capture_output=True, text=True).stdout
            pathlib.Path(rendered, k.replace("/", "-") + ".yaml").write_text(out)
    docs = {}
    for path in sorted(pathlib.Path(rendered).glob("*.yaml")):
        docs[path.stem] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if tmp:
        tmp.cleanup()
    return docs


def named_port(container, port):
    """Resolves a probe's port (a number or a containerPort name) to a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"container {container['name']} has no port named {port}")


def workloads(docs):
    """(kind, name, pod spec) of every Deployment and Job."""
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d["kind"], d["metadata"]["name"], d["spec"]["template"]


@unittest.skipIf(yaml is None, "PyYAML is not installed (tools/check-deploy's venv has it)")
class ManifestsMatchDevelopmentMd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.binaries, cls.flags = parse_development_md()
        cls.rendered = render_all()

    def test_the_table_was_parsed(self):
        self.assertIn("kurt-edge", self.binaries)
        self.assertIn("kurt-links", self.binaries)
        self.assertEqual(self.binaries["kurt-edge"], (None, 8080))
        self.assertIn("listen_host", self.flags)
        self.assertIn("metrics_port", self.flags)

    def test_every_binary_is_deployed(self):
        for overlay in OVERLAYS:
            names = {(kind, name) for kind, name, _ in workloads(self.rendered[overlay])}
            for binary, (grpc, http) in self.binaries.items():
                kind = "Deployment" if http else "Job"
                self.assertIn((kind, binary), names, f"{overlay}: no {kind} {binary}")

    def test_container_ports_probes_and_scrape_annotations(self):
        for overlay in OVERLAYS:
            for kind, name, template in workloads(self.rendered[overlay]):
                if name not in self.binaries:
                    continue
                grpc, http = self.binaries[name]
                with self.subTest(overlay=overlay, workload=name):
                    (container,) = template["spec"]["containers"]
                    ports = sorted(p["containerPort"] for p in container.get("ports", []))
                    self.assertEqual(ports, sorted(p for p in (grpc, http, H2_PORTS.get(name)) if p))
                    if http is None:
                        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                            self.assertNotIn(probe, container)
                        continue
                    probes = {
                        "readinessProbe": "/readyz",
                        "livenessProbe": "/healthz",
                        "startupProbe": "/healthz",
                    }
                    for probe, path in probes.items():
                        self.assertIn(probe, container)
                        get = container[probe]["httpGet"]
                        self.assertEqual(get["path"], path, probe)
                        self.assertEqual(named_port(container, get["port"]), http, probe)
                    annotations = template["metadata"].get("annotations", {})
                    self.assertEqual(annotations.get("prometheus.io/scrape"), "true")
                    self.assertEqual(annotations.get("prometheus.io/port"), str(http))
                    self.assertEqual(annotations.get("prometheus.io/path"), "/metrics")

    def test_service_ports(self):
        for overlay in OVERLAYS:
            services = {d["metadata"]["name"]: d for d in self.rendered[overlay]
                        if d["kind"] == "Service"}
            for name, (grpc, http) in self.binaries.items():
                if http is None:
                    continue
                with self.subTest(overlay=overlay, service=name):
                    ports = {p["name"]: p for p in services[name]["spec"]["ports"]}
                    if grpc:
                        self.assertEqual(ports["grpc"]["port"], grpc)
                        self.assertEqual(ports["metrics"]["port"], http)
                        if name in H2_PORTS:
                            self.assertEqual(ports["h2"]["port"], H2_PORTS[name])
                        # Headless, so gRPC clients see every pod and balance themselves.
                        self.assertEqual(services[name]["spec"].get("clusterIP"), "None")
                    else:
                        self.assertEqual(ports["http"]["port"], http)

    def test_network_policy_ports_are_served(self):
        for overlay in OVERLAYS:
            docs = self.rendered[overlay]
            for d in docs:
                if d["kind"] != "NetworkPolicy":
                    continue
                target = d["spec"]["podSelector"].get("matchLabels", {}).get(
                    "app.kubernetes.io/name")
                if target in self.binaries:
                    served = {p for p in self.binaries[target] if p} | (
                        {H2_PORTS[target]} if target in H2_PORTS else set())
                    for rule in d["spec"].get("ingress", []):
                        for port in rule.get("ports", []):
                            self.assertIn(port["port"], served, f"{overlay}: {d['metadata']['name']}")
                # Egress to another Kurt binary must use its gRPC port (and may use its h2 one).
                for rule in d["spec"].get("egress", []):
                    for peer in rule.get("to", []):
                        callee = peer.get("podSelector", {}).get("matchLabels", {}).get(
                            "app.kubernetes.io/name")
                        if callee in self.binaries:
                            ports = {p["port"] for p in rule.get("ports", [])}
                            grpc = self.binaries[callee][0]
                            allowed = {grpc} | ({H2_PORTS[callee]} if callee in H2_PORTS else set())
                            self.assertIn(grpc, ports, f"{overlay}: {d['metadata']['name']} → {callee}")
                            self.assertLessEqual(ports, allowed,
                                                 f"{overlay}: {d['metadata']['name']} → {callee}")

    def used_flags(self, overlay):
        """{workload: {flag: where}}: every flag a workload is given, by a KURT_* variable (its own
        or from a ConfigMap it takes in whole) or by a --flag argument."""
        docs = self.rendered[overlay]
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                       if d["kind"] == "ConfigMap"}
        used = {}
        for _, name, template in workloads(docs):
            if name not in self.binaries:
                continue
            flags = used.setdefault(name, {})
            for c in template["spec"]["containers"]:
                for source in c.get("envFrom", []):
                    ref = source.get("configMapRef", {}).get("name")
                    for key in config_maps.get(ref, {}):
                        if key.startswith("KURT_"):
                            flags.setdefault(key[5:].lower(), f"ConfigMap {ref}")
                for e in c.get("env", []):
                    if e["name"].startswith("KURT_"):
                        flags.setdefault(e["name"][5:].lower(), "env")
                for arg in c.get("command", []) + c.get("args", []):
                    m = re.match(r"--([a-z0-9_]+)", str(arg))
                    if m:
                        flags.setdefault(m.group(1), "args")
        return used

    def test_every_flag_is_documented(self):
        """A flag the manifests set is in docs/development.md (the platform's flags) or declared
        by that binary's own source; a typo or a flag of another binary fails."""
        shared = [d for d in self.rendered["overlays-prod"]
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("kurt-config")]
        for key in shared[0]["data"]:
            self.assertIn(key[5:].lower(), self.flags, f"kurt-config's {key} is not documented")
        for overlay in OVERLAYS:
            for binary, flags in self.used_flags(overlay).items():
                known = self.flags | source_flags(binary)
                for flag, where in flags.items():
                    with self.subTest(overlay=overlay, binary=binary, flag=flag):
                        self.assertIn(flag, known, f"--{flag} ({where}) is neither in "
                                      f"docs/development.md nor declared by {binary}")

    def environment(self, overlay, binary):
        """{KURT_* variable: value} a workload gets from the ConfigMaps it takes in whole."""
        docs = self.rendered[overlay]
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                       if d["kind"] == "ConfigMap"}
        env = {}
        for _, name, template in workloads(docs):
            if name != binary:
                continue
            for c in template["spec"]["containers"]:
                for source in c.get("envFrom", []):
                    env.update(config_maps.get(source.get("configMapRef", {}).get("name"), {}))
        return env

    def test_edge_authenticates_outside_dev(self):
        """The edge refuses to start without kurt-accounts unless in development: prod gives it
        the address of kurt-accounts' Service and no development mode."""
        port = self.binaries["kurt-accounts"][0]
        for overlay in OVERLAYS:
            env = self.environment(overlay, "kurt-edge")
            with self.subTest(overlay=overlay):
                self.assertEqual(env.get("KURT_ACCOUNTS_ADDRESS"), f"kurt-accounts:{port}")
                self.assertTrue(env.get("KURT_TRUSTED_PROXIES"), "no trusted proxies: every "
                                "client would be the ingress' address for the rate limits")
        self.assertNotIn("KURT_DEV_MODE", self.environment("overlays-prod", "kurt-edge"))

    def test_edge_outlasts_the_ingress_keepalive(self):
        """ingress-nginx must close an idle upstream connection before the edge does, or a request
        sent on it as the edge closes gets a 502: the edge's idle timeout is the longer one."""
        ingress = [d for d in self.rendered["ingress-nginx"] if d["kind"] == "ConfigMap"][0]
        nginx = int(ingress["data"]["upstream-keepalive-timeout"])
        source = (ROOT / "edge" / "http_server.h").read_text()
        edge = int(re.search(r"kDefaultIdleTimeout = absl::Seconds\((\d+)\)", source).group(1))
        for overlay in OVERLAYS:
            value = self.environment(overlay, "kurt-edge").get("KURT_IDLE_TIMEOUT")
            if value:
                edge = int(re.fullmatch(r"(\d+)s", value).group(1))
            with self.subTest(overlay=overlay):
                self.assertGreater(edge, nginx, "the edge's idle timeout must outlast nginx's "
                                   "upstream-keepalive-timeout")

    def test_listen_host_is_all_interfaces(self):
        for overlay in OVERLAYS:
            config = [d for d in self.rendered[overlay]
                      if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("kurt-config")]
            self.assertEqual(len(config), 1)
            self.assertEqual(config[0]["data"]["KURT_LISTEN_HOST"], "0.0.0.0")

    def test_images_are_the_binaries(self):
        for overlay in OVERLAYS:
            for _, name, template in workloads(self.rendered[overlay]):
                if name in self.binaries:
                    image = template["spec"]["containers"][0]["image"]
                    self.assertEqual(image.rsplit("/", 1)[-1].split(":")[0].split("@")[0], name)

    def test_dockerfile_names_every_binary(self):
        dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
        for binary in self.binaries:
            self.assertIn(binary, dockerfile)
        # The from-source build compiles and exports every binary (in one stage).
        build = (ROOT / "deploy" / "docker" / "build.Dockerfile").read_text()
        for line in ("--target", "for b in"):
            block = build[build.index(line):]
            block = block[:block.index(";") if line == "for b in" else block.index("\\\n &&")]
            for binary in self.binaries:
                self.assertIn(binary, block, f"build.Dockerfile: {line}")

    def test_binaries_know_the_flags(self):
        """Against the real binaries, when tools/build has made them: they accept every flag the
        manifests give them and listen on the documented ports by default."""
        found = 0
        for binary, (grpc, http) in self.binaries.items():
            path = BUILD / "bin" / binary
            if not path.exists():
                continue
            found += 1
            # Without the KURT_* environment twins, so that "currently" is the binary's default.
            env = {k: v for k, v in os.environ.items() if not k.startswith("KURT_")}
            out = subprocess.run([str(path), "--helpfull"], capture_output=True, text=True,
                                 timeout=30, env=env)
            text = out.stdout + out.stderr
            used = set()
            for overlay in OVERLAYS:
                used |= set(self.used_flags(overlay).get(binary, {}))
            with self.subTest(binary=binary):
                for flag in sorted(used):
                    self.assertRegex(text, rf"--{flag}\b", f"{binary} has no --{flag}")
                # "--grpc_port (…); default: 0;\n currently: 7101;" — the binary's own default.
                ports = set()
                for m in re.finditer(r"--([a-z0-9_]+_port) \(.*?\);\s+default: (\d+);"
                                     r"(?:\s*currently: (\d+);)?", text, re.S):
                    ports.add(int(m.group(3) or m.group(2)))
                for port in (grpc, http):
                    if port:
                        self.assertIn(port, ports, f"{binary} does not default to port {port}")
        if not found:
            self.skipTest(f"no binaries in {BUILD / 'bin'} (tools/build)")

    def test_running_stack_serves_the_probed_paths(self):
        """Against a running local stack: what the probes ask for must answer."""
        checked = 0
        for binary, (grpc, http) in self.binaries.items():
            if http is None:
                continue
            try:
                socket.create_connection(("127.0.0.1", http), timeout=0.5).close()
            except OSError:
                continue
            checked += 1
            for path, allowed in (("/healthz", {200}), ("/readyz", {200, 503})):
                with self.subTest(binary=binary, path=path):
                    conn = http_client(http)
                    conn.request("GET", path)
                    status = conn.getresponse().status
                    conn.close()
                    self.assertIn(status, allowed, f"{binary} GET {path} on {http}")
        if not checked:
            self.skipTest("no Kurt binary listening on 127.0.0.1 (tools/run)")


def binary_flags(binary):
    """The flags a binary has: asked of the built binary (--helpfull) when tools/build made it,
    else those its own source declares."""
    path = BUILD / "bin" / binary
    if path.exists():
        env = {k: v for k, v in os.environ.items() if not k.startswith("KURT_")}
        out = subprocess.run([str(path), "--helpfull"], capture_output=True, text=True,
                             timeout=30, env=env)
        return set(re.findall(r"^\s+--([a-z0-9_]+) \(", out.stdout + out.stderr, re.M))
    return source_flags(binary)


@unittest.skipIf(yaml is None, "PyYAML is not installed (tools/check-deploy's venv has it)")
class SecretsPerPod(unittest.TestCase):
    """Each pod gets only the secret keys its binary uses: the internet-facing edge has no database
    password, the service that fetches user-given webhook URLs no admin token."""

    @classmethod
    def setUpClass(cls):
        cls.rendered = render_all()
        cls.flags = {}

    def flags_of(self, binary):
        if binary not in self.flags:
            self.flags[binary] = binary_flags(binary)
        return self.flags[binary]

    def containers(self, overlay):
        docs = self.rendered[overlay]
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                       if d["kind"] == "ConfigMap"}
        for kind, name, template in workloads(docs):
            for c in template["spec"]["containers"]:
                env = set()
                for source in c.get("envFrom", []):
                    env |= set(config_maps.get(source.get("configMapRef", {}).get("name"), {}))
                env |= {e["name"] for e in c.get("env", []) if "value" in e}
                yield name, template["spec"], c, env

    def secret_env(self, container):
        return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})}

    def test_no_pod_takes_a_whole_secret(self):
        for overlay in OVERLAYS:
            for name, _, c, _ in self.containers(overlay):
                for source in c.get("envFrom", []):
                    self.assertNotIn("secretRef", source,
                                     f"{overlay}: {name} takes every key of a Secret (envFrom)")

    def test_every_secret_key_is_one_the_binary_uses(self):
        for overlay in OVERLAYS:
            for name, spec, c, env in self.containers(overlay):
                if not name.startswith("kurt-") or name == "kurt-pgbouncer":
                    continue
                for variable in self.secret_env(c):
                    with self.subTest(overlay=overlay, workload=name, variable=variable):
                        if variable == "PGPASSWORD":
                            # libpq's: only for a binary that is told where PostgreSQL is.
                            self.assertIn("KURT_PG_PRIMARY_URL", env,
                                          f"{name} gets the database password but no database")
                        else:
                            # A client's credentials only where that client is configured.
                            for client, address in (("KURT_REDIS_", "KURT_REDIS_URL"),
                                                    ("KURT_KAFKA_", "KURT_KAFKA_BROKERS")):
                                if variable.startswith(client):
                                    self.assertIn(address, env, f"{name} gets {variable} but "
                                                  f"no {address}")
                            self.assertTrue(variable.startswith("KURT_"), variable)
                            self.assertIn(variable[5:].lower(), self.flags_of(name),
                                          f"{name} has no --{variable[5:].lower()}")

    def test_secret_volumes_are_read_by_the_pods_config(self):
        """A Secret mounted as files (PgBouncer's auth file, a service's TLS certificate) is named
        by the configuration that the same container mounts or takes into its environment. In
        prod: the dev PgBouncer authenticates nobody (auth_type any) and its auth Secret is
        optional and never created; mutual TLS is prod's."""
        for overlay in ["overlays-prod"]:
            docs = self.rendered[overlay]
            config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                           if d["kind"] == "ConfigMap"}
            for name, spec, c, _ in self.containers(overlay):
                volumes = {v["name"]: v for v in spec.get("volumes", [])}
                mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
                config = "".join(
                    "".join(config_maps.get(volumes[v]["configMap"]["name"], {}).values())
                    for v in mounts if "configMap" in volumes.get(v, {}))
                config += "".join(
                    "".join(config_maps.get(e["configMapRef"]["name"], {}).values())
                    for e in c.get("envFrom", []) if "configMapRef" in e)
                for v in volumes.values():
                    if "secret" not in v:
                        continue
                    with self.subTest(overlay=overlay, workload=name, volume=v["name"]):
                        self.assertIn(v["name"], mounts, f"{name} declares but never mounts it")
                        self.assertIn(mounts[v["name"]], config,
                                      f"{name}'s configuration never reads {mounts[v['name']]}")

    def test_what_the_edge_and_notifications_get(self):
        """In prod the Redis users also get Redis's AUTH token and the Kafka users their Kafka
        user; the dev overlay's throwaway Redis and Kafka take anyone (deploy/overlays/dev).
        kurt-accounts and kurt-links, which cache records in Redis, get the key that seals them;
        the edge, which only reads and writes rate limits there, does not."""
        redis, kafka = {"KURT_REDIS_PASSWORD"}, {"KURT_KAFKA_SASL_USERNAME",
                                                 "KURT_KAFKA_SASL_PASSWORD"}
        for overlay in OVERLAYS:
            prod = overlay == "overlays-prod"
            got = {name: set(self.secret_env(c)) for name, _, c, _ in self.containers(overlay)}
            self.assertEqual(got["kurt-edge"], {"KURT_EDGE_SECRET"} | (redis if prod else set()),
                             overlay)
            self.assertEqual(got["kurt-notifications"],
                             {"KURT_EDGE_SECRET", "PGPASSWORD"} | (kafka if prod else set()),
                             overlay)
            self.assertEqual(got["kurt-accounts"],
                             {"KURT_EDGE_SECRET", "PGPASSWORD", "KURT_ADMIN_TOKEN",
                              "KURT_REDIS_RECORD_SECRET"} | (redis if prod else set()), overlay)
            self.assertEqual(got["kurt-links"],
                             {"KURT_EDGE_SECRET", "PGPASSWORD", "KURT_CLICK_HASH_SALT",
                              "KURT_REDIS_RECORD_SECRET"} | (redis | kafka if prod else set()),
                             overlay)

    def test_each_kafka_user_is_one_pods_own(self):
        """Prod's MSK takes only SASL/SCRAM over TLS: every pod with a Kafka client gets a user
        name and password from a Secret no other workload refers to, over sasl_ssl, to the port
        the brokers' security group opens; no other pod gets Kafka credentials."""
        docs = self.rendered["overlays-prod"]
        sg = (ROOT / "infra/terraform/modules/kafka/main.tf").read_text()
        port = int(re.search(r'"aws_vpc_security_group_ingress_rule".*?from_port\s*=\s*(\d+)',
                             sg, re.S).group(1))
        owners = {}
        users = 0
        for name, _, c, env in self.containers("overlays-prod"):
            refs = {v: r for v, r in self.secret_env(c).items() if v.startswith("KURT_KAFKA_")}
            with self.subTest(workload=name):
                if "KURT_KAFKA_BROKERS" not in env:
                    self.assertEqual(refs, {}, f"{name} has no Kafka client")
                    continue
                users += 1
                self.assertEqual(set(refs), {"KURT_KAFKA_SASL_USERNAME",
                                             "KURT_KAFKA_SASL_PASSWORD"})
                self.assertEqual(len({r["name"] for r in refs.values()}), 1)
                for r in refs.values():
                    owners.setdefault(r["name"], set()).add(name)
                config = ProdClients.environment(docs, name)
                self.assertEqual(config.get("KURT_KAFKA_SECURITY_PROTOCOL"), "sasl_ssl")
                self.assertEqual(config.get("KURT_KAFKA_SASL_MECHANISM"), "SCRAM-SHA-512")
                for broker in config["KURT_KAFKA_BROKERS"].split(","):
                    self.assertEqual(int(broker.rsplit(":", 1)[1]), port, broker)
        self.assertEqual(users, 5, "links, analytics, reports, report-worker, notifications")
        for secret, workloads in owners.items():
            self.assertEqual(len(workloads), 1, f"{secret} is shared by {sorted(workloads)}")

    def test_dev_needs_no_secret_and_prod_every_one(self):
        """The dev overlay marks each reference optional (by its index in env: the patches in
        deploy/overlays/dev); in prod a missing Secret keeps the pod from starting."""
        for overlay, optional in (("overlays-dev", True), ("overlays-prod", False)):
            for name, _, c, _ in self.containers(overlay):
                for variable, ref in self.secret_env(c).items():
                    self.assertEqual(ref.get("optional", False), optional,
                                     f"{overlay}: {name} {variable}")


def stunnel_config(text):
    """{section: {option: [values]}} of an stunnel configuration ('' is the global section)."""
    sections, current = {"": {}}, ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#":
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            current = m.group(1)
            sections[current] = {}
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key.strip(), []).append(value.strip())
    return sections


@unittest.skipIf(yaml is None, "PyYAML is not installed (tools/check-deploy's venv has it)")
class ProdClients(unittest.TestCase):
    """In prod, Redis (ElastiCache: TLS and AUTH required) is reached only through each pod's TLS
    sidecar, which verifies the server, with the AUTH token from a Secret."""

    @classmethod
    def setUpClass(cls):
        cls.rendered = render_all()
        cls.docs = cls.rendered["overlays-prod"]
        cls.config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in cls.docs
                           if d["kind"] == "ConfigMap"}

    @staticmethod
    def environment(docs, workload):
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                       if d["kind"] == "ConfigMap"}
        env = {}
        for _, name, template in workloads(docs):
            if name == workload:
                for source in template["spec"]["containers"][0].get("envFrom", []):
                    env.update(config_maps.get(source.get("configMapRef", {}).get("name"), {}))
        return env

    def test_redis_only_through_the_tls_sidecar_with_a_password(self):
        redis_users = []
        for _, name, template in workloads(self.docs):
            env = self.environment(self.docs, name)
            if "KURT_REDIS_URL" not in env:
                continue
            redis_users.append(name)
            spec = template["spec"]
            (container,) = spec["containers"]
            with self.subTest(workload=name):
                url = urllib.parse.urlsplit(env["KURT_REDIS_URL"])
                self.assertEqual(url.hostname, "127.0.0.1",
                                 "the service speaks plaintext only to its pod's loopback")
                self.assertIsNone(url.password, "the password comes from a Secret, not a URL")
                self.assertNotIn("KURT_REDIS_SENTINELS", env)
                password = [e for e in container.get("env", [])
                            if e["name"] == "KURT_REDIS_PASSWORD"]
                self.assertEqual(len(password), 1, "no AUTH token")
                ref = password[0].get("valueFrom", {}).get("secretKeyRef")
                self.assertTrue(ref, "the AUTH token comes from a Secret")
                self.assertFalse(ref.get("optional", False))
                # A native sidecar: started before the service, kept running beside it.
                sidecars = [c for c in spec.get("initContainers", [])
                            if c.get("restartPolicy") == "Always"
                            and image_of(c) == "kurt-redis-tls"]
                self.assertEqual(len(sidecars), 1, "no Redis TLS sidecar")
                sidecar = sidecars[0]
                self.assertTrue(sidecar["securityContext"]["readOnlyRootFilesystem"])
                self.assertEqual(sidecar["securityContext"]["capabilities"]["drop"], ["ALL"])
                volumes = {v["name"]: v for v in spec["volumes"]}
                (mount,) = sidecar["volumeMounts"]
                files = self.config_maps[volumes[mount["name"]]["configMap"]["name"]]
                # The image runs /etc/stunnel/kurt/redis-tls.conf (deploy/docker).
                entry = re.search(r'ENTRYPOINT \[.*"([^"]+)"\]', (
                    ROOT / "deploy/docker/redis-tls.Dockerfile").read_text()).group(1)
                self.assertEqual(os.path.dirname(entry), mount["mountPath"])
                conf = stunnel_config(files[os.path.basename(entry)])
                services = [s for s in conf if s]
                self.assertEqual(len(services), 1)
                service = conf[services[0]]
                one = {k: v[-1] for k, v in service.items()}
                self.assertEqual(one.get("client"), "yes")
                self.assertEqual(one.get("accept"), f"127.0.0.1:{url.port}",
                                 "the sidecar listens where --redis_url points, on loopback only")
                # TLS to the server, whose certificate must chain to a trusted CA and carry the
                # name connected to.
                self.assertEqual(one.get("verifyChain"), "yes")
                self.assertNotIn("verify", service, "verifyChain/checkHost, not the old verify")
                self.assertTrue(one.get("CAfile"))
                host, port = one["connect"].rsplit(":", 1)
                self.assertEqual(service.get("checkHost"), [host])
                self.assertEqual(int(port), 6379)
                self.assertIn(one.get("sslVersionMin"), ("TLSv1.2", "TLSv1.3"))
                # The endpoint moves at a failover: resolve it for each connection.
                self.assertEqual(one.get("delay"), "yes")
        self.assertEqual(sorted(redis_users), ["kurt-accounts", "kurt-edge", "kurt-links"])

    def test_the_sidecar_image_is_built(self):
        """tools/images builds it, from deploy/docker, like every image the overlays name."""
        images = (ROOT / "tools/images").read_text()
        self.assertIn("deploy/docker/redis-tls.Dockerfile", images)
        self.assertRegex(images, r"build_image kurt-redis-tls")


def image_of(container):
    return container["image"].rsplit("/", 1)[-1].split("@")[0].split(":")[0]


def http_client(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


@unittest.skipIf(yaml is None, "PyYAML is not installed (tools/check-deploy's venv has it)")
class Autoscaling(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = render_all()

    def test_consumers_scale_on_their_groups_lag(self):
        partitions = int(re.search(
            r'variable "default_partitions" \{.*?default\s*=\s*(\d+)',
            (ROOT / "infra/terraform/modules/kafka/variables.tf").read_text(), re.S).group(1))
        hpas = {d["metadata"]["name"]: d for d in self.rendered["overlays-prod"]
                if d["kind"] == "HorizontalPodAutoscaler"}
        # analytics keeps its offsets in PostgreSQL: only its own lag metric shows its progress.
        expected = {
            "kurt-analytics": ("kurt_kafka_consumer_lag", "group"),
            "kurt-report-worker": ("kafka_consumergroup_lag", "consumergroup"),
            "kurt-notifications": ("kafka_consumergroup_lag", "consumergroup"),
        }
        adapter = (ROOT / "deploy/monitoring/prometheus-adapter.yaml").read_text()
        for name, (metric, label) in expected.items():
            with self.subTest(hpa=name):
                spec = hpas[name]["spec"]
                external = [m["external"] for m in spec["metrics"] if m["type"] == "External"]
                self.assertEqual(len(external), 1)
                self.assertEqual(external[0]["metric"]["name"], metric)
                self.assertEqual(external[0]["metric"]["selector"]["matchLabels"][label], name)
                self.assertIn(f"as: {metric}", adapter)
                # A consumer beyond the partition count has nothing to read.
                self.assertLessEqual(spec["maxReplicas"], partitions)

    def test_every_deployment_has_an_hpa_and_a_pdb(self):
        for overlay in OVERLAYS:
            docs = self.rendered[overlay]
            by_kind = {}
            for d in docs:
                by_kind.setdefault(d["kind"], set()).add(d["metadata"]["name"])
            binaries, _ = parse_development_md()
            for name, (_, http) in binaries.items():
                if http is None:
                    continue
                self.assertIn(name, by_kind["HorizontalPodAutoscaler"], overlay)
                self.assertIn(name, by_kind["PodDisruptionBudget"], overlay)


if __name__ == "__main__":
    unittest.main()

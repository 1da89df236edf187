"""Runs Kurt from its images with the rendered dev overlay's settings, as a user would see it.

tools/check-deploy --images builds the images (tools/images) and renders deploy/overlays/dev, then
runs this. From the rendered manifests it takes every Kurt workload (the migration Job, PgBouncer
and each service's Deployment) with its security context (read-only root, non-root user), its
ConfigMaps' environment, its Secrets and its volumes, and plays them with `podman kube play` on
the host's network. Only the addresses change: where a ConfigMap names a Service, the workload
reaches it on 127.0.0.1 (host network: every pod listens on its own ports there), and the dev
overlay's throwaway PostgreSQL, Redis and Kafka are replaced by the local stack's servers
(KURT_PG_PRIMARY_URL, KURT_PG_REPLICA_URL, KURT_REDIS_URL, KURT_KAFKA_BROKERS). The Secrets are
made here with random values, one podman secret per Kubernetes Secret the workloads refer to.

Then: the migration pod exits 0; every container answers its startup, liveness and readiness
probes' paths with 200 on their ports; and through the containerised edge an admin token creates
an account, its key creates a link, the redirect answers 302 to the link's target, and a report is
created and reaches SUCCEEDED. Everything it started is removed at the end.

Usage: run_images.py RENDERED_DEV_YAML WORK_DIR [--tag dev]   (needs PyYAML and root)
"""
import argparse
import base64
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse

import yaml

DEV_DEPENDENCIES = {  # the dev overlay's throwaway servers (app.kubernetes.io/name) → the stack's
    "postgres": "KURT_PG_PRIMARY_URL",
    "redis": "KURT_REDIS_URL",
    "kafka": "KURT_KAFKA_BROKERS",
}
READY_TIMEOUT_S = 120
REPORT_TIMEOUT_S = 90


def log(message):
    print(f"[run_images] {message}", file=sys.stderr, flush=True)


def fail(message):
    raise SystemExit(f"FAIL: {message}")


def host_port(value):
    """host:port of a URL (postgresql://u@h:p/db, redis://h:p) or of the first of 'h:p,h:p'."""
    if "://" in value:
        u = urllib.parse.urlsplit(value)
        return f"{u.hostname}:{u.port}"
    return value.split(",")[0]


def image_name(image):
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]


class Plan:
    """What to play, derived from the rendered manifests."""

    def __init__(self, docs, tag):
        self.docs = docs
        self.tag = tag
        self.config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        deployments = [d for d in docs if d["kind"] == "Deployment"]
        jobs = [d for d in docs if d["kind"] == "Job"]

        def is_kurt(d):
            containers = d["spec"]["template"]["spec"]["containers"]
            return all(image_name(c["image"]).startswith("kurt-") for c in containers)

        self.jobs = [d for d in jobs if is_kurt(d)]
        self.deployments = [d for d in deployments if is_kurt(d)]
        if not self.deployments or not self.jobs:
            fail("no Kurt Deployment or Job in the rendered manifests")
        self.addresses = self._addresses(deployments)

    def _addresses(self, deployments):
        """{'service:port': 'host:port'}: each Service the workloads may name, as reached here."""
        labels = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
                  for d in deployments}
        kurt = {d["metadata"]["name"] for d in self.deployments}
        out = {}
        for s in (d for d in self.docs if d["kind"] == "Service"):
            target = s["spec"].get("selector", {}).get("app.kubernetes.io/name")
            for p in s["spec"]["ports"]:
                key = f"{s['metadata']['name']}:{p['port']}"
                if target in kurt:
                    out[key] = f"127.0.0.1:{self._target_port(target, p)}"
                elif target in DEV_DEPENDENCIES:
                    env = DEV_DEPENDENCIES[target]
                    if not os.environ.get(env):
                        fail(f"{env} is not set: start the local stack (tools/stack up) and "
                             "export its .kurt/stack.env")
                    out[key] = host_port(os.environ[env])
                elif target in labels:
                    fail(f"Service {s['metadata']['name']} selects {target}, which this test "
                         "neither runs nor replaces")
        return out

    def _target_port(self, name, service_port):
        target = service_port.get("targetPort", service_port["port"])
        if isinstance(target, int):
            return target
        d = next(d for d in self.deployments if d["metadata"]["name"] == name)
        for c in d["spec"]["template"]["spec"]["containers"]:
            for p in c.get("ports", []):
                if p.get("name") == target:
                    return p["containerPort"]
        fail(f"{name} has no port named {target}")

    def rewrite(self, text):
        """A ConfigMap value with every Service address replaced by where it is reached here."""
        def sub(m):
            return self.addresses.get(m.group(0), m.group(0))
        text = re.sub(r"[a-z0-9-]+:\d+", sub, text)

        # PgBouncer's ini: "host=postgres-primary port=5432".
        def ini(m):
            reached = self.addresses.get(f"{m.group(1)}:{m.group(2)}")
            if not reached:
                return m.group(0)
            h, p = reached.rsplit(":", 1)
            return f"host={h} port={p}"
        return re.sub(r"host=([a-z0-9-]+) port=(\d+)", ini, text)

    def played_config_maps(self):
        out = []
        for cm in self.config_maps.values():
            cm = json.loads(json.dumps(cm))
            cm["data"] = {k: self.rewrite(v) for k, v in cm.get("data", {}).items()}
            out.append(cm)
        return out

    def secret_refs(self):
        """{secret name: {keys}} that the workloads refer to (env and volumes)."""
        refs = {}
        for d in self.jobs + self.deployments:
            spec = d["spec"]["template"]["spec"]
            for c in spec["containers"]:
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        refs.setdefault(ref["name"], set()).add(ref["key"])
                for source in c.get("envFrom", []):
                    if "secretRef" in source:
                        fail(f"{d['metadata']['name']} takes a whole Secret "
                             f"({source['secretRef']['name']}) in envFrom")
            for v in spec.get("volumes", []):
                if "secret" in v:
                    items = v["secret"].get("items") or [{"key": "userlist.txt"}]
                    refs.setdefault(v["secret"]["secretName"], set()).update(
                        i["key"] for i in items)
        return refs

    def pod_spec(self, template, restart=None):
        spec = json.loads(json.dumps(template["spec"]))
        spec["hostNetwork"] = True
        if restart:
            spec["restartPolicy"] = restart
        for c in spec["containers"]:
            c["image"] = f"localhost/{image_name(c['image'])}:{self.tag}"
            c["imagePullPolicy"] = "Never"
            # Kubernetes 1.30's sleep action; this test stops the pods itself.
            c.pop("lifecycle", None)
            # On the host network a container listens on its own ports; podman refuses port
            # mappings there.
            c.pop("ports", None)
            # The test asks the probes' paths itself (podman would run them with curl inside the
            # image, which has none).
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                c.pop(probe, None)
        return spec

    def played_migrate(self):
        out = []
        for job in self.jobs:
            out.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": job["metadata"]["name"],
                                     "labels": job["spec"]["template"]["metadata"].get("labels", {})},
                        "spec": self.pod_spec(job["spec"]["template"], restart="Never")})
        return out

    def played_deployments(self):
        out = []
        for d in self.deployments:
            d = json.loads(json.dumps(d))
            d["spec"]["replicas"] = 1
            for key in ("strategy", "revisionHistoryLimit"):
                d["spec"].pop(key, None)
            d["spec"]["template"]["spec"] = self.pod_spec(d["spec"]["template"])
            out.append(d)
        return out

    def probes(self):
        """[(workload, probe kind, port, path)] from the manifests."""
        out = []
        for d in self.deployments:
            for c in d["spec"]["template"]["spec"]["containers"]:
                ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                    get = c.get(kind, {}).get("httpGet")
                    if get:
                        port = get["port"] if isinstance(get["port"], int) else ports[get["port"]]
                        out.append((d["metadata"]["name"], kind, port, get["path"]))
        return out

    def ports(self):
        return sorted({p["containerPort"] for d in self.deployments
                       for c in d["spec"]["template"]["spec"]["containers"]
                       for p in c.get("ports", [])})


def podman(*args, check=True, capture=True):
    r = subprocess.run(["podman", *args], capture_output=capture, text=True)
    if check and r.returncode != 0:
        fail(f"podman {' '.join(args)}: {r.stderr.strip()}")
    return r


def request(method, port, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body) if body is not None else None
        h = dict(headers or {})
        if data is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def get_status(port, path):
    try:
        return request("GET", port, path)[0]
    except OSError:
        return None


class Run:
    def __init__(self, plan, work):
        self.plan = plan
        self.work = work
        self.files = []
        self.secrets = []
        self.values = {}

    def write(self, name, docs):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
        return path

    def make_secrets(self):
        for name, keys in sorted(self.plan.secret_refs().items()):
            values = {}
            for key in sorted(keys):
                value = secrets.token_hex(24)
                if key == "userlist.txt":  # PgBouncer's auth_file format
                    value = f'"kurt" "{value}"\n'
                values[key] = value
                self.values[(name, key)] = value
            path = os.path.join(self.work, f"secret-{name}.json")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({k: base64.b64encode(v.encode()).decode() for k, v in values.items()}, f)
            podman("secret", "rm", name, check=False)
            podman("secret", "create", name, path)
            os.unlink(path)
            self.secrets.append(name)
        log(f"secrets: {', '.join(self.secrets)}")

    def secret_of(self, workload, variable):
        for d in self.plan.deployments:
            if d["metadata"]["name"] != workload:
                continue
            for c in d["spec"]["template"]["spec"]["containers"]:
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if e["name"] == variable and ref:
                        return self.values[(ref["name"], ref["key"])]
        fail(f"{workload} gets no {variable} from a Secret")

    def play(self, name, docs):
        path = self.write(name, docs)
        self.files.append(path)
        podman("kube", "play", "--network", "host", "--log-driver", "k8s-file", path)
        return path

    def service_containers(self):
        return {f"{d['metadata']['name']}-pod-0-{c['name']}" for d in self.plan.deployments
                for c in d["spec"]["template"]["spec"]["containers"]}

    def logs(self):
        r = podman("ps", "-a", "--format", "{{.Names}}", check=False)
        for c in r.stdout.split():
            if c.endswith("-infra"):
                continue
            out = podman("logs", "--tail", "15", c, check=False)
            print(f"--- {c}\n{out.stdout}{out.stderr}", file=sys.stderr)

    def down(self):
        for path in reversed(self.files):
            podman("kube", "down", path, check=False)
        for name in self.secrets:
            podman("secret", "rm", name, check=False)
        remove_config_volumes(self.plan)


def remove_config_volumes(plan):
    """podman keeps a ConfigMap mounted as files in a volume named after it, and would reuse it
    as it is (the rewritten addresses included) in the next run."""
    for name in plan.config_maps:
        podman("volume", "rm", "-f", name, check=False)


def ports_free(ports):
    busy = []
    for port in ports:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            busy.append(port)
        except OSError:
            pass
    if busy:
        fail(f"ports {busy} are in use on 127.0.0.1; the containers run on the host network with "
             "the manifests' ports (is tools/run running? tools/stack down stops it)")


def migrate(run):
    cm = run.plan.played_config_maps()
    run.play("migrate.yaml", cm + run.plan.played_migrate())
    for job in run.plan.jobs:
        name = job["metadata"]["name"]
        container = f"{name}-{job['spec']['template']['spec']['containers'][0]['name']}"
        code = podman("wait", container).stdout.strip()
        if code != "0":
            run.logs()
            fail(f"{name} exited with {code}")
        log(f"{name}: exit 0")


def wait_ready(run):
    start = time.monotonic()
    pending = run.plan.probes()
    while pending:
        pending = [p for p in pending if get_status(p[2], p[3]) != 200]
        if not pending:
            break
        if time.monotonic() - start > READY_TIMEOUT_S:
            run.logs()
            fail("not ready within %d s: %s" % (READY_TIMEOUT_S, ", ".join(
                f"{w} {k} :{port}{path} -> {get_status(port, path)}" for w, k, port, path in pending)))
        exited = [c for c in podman("ps", "-a", "--filter", "status=exited", "--format",
                                    "{{.Names}}").stdout.split() if c in run.service_containers()]
        if exited:
            run.logs()
            fail(f"exited: {exited}")
        time.sleep(0.5)
    log(f"every container answers its probes ({len(run.plan.probes())} probes) after "
        f"{time.monotonic() - start:.1f} s")


def check_settings(run):
    """The running containers carry the manifests' security settings (podman could ignore one)."""
    for d in run.plan.deployments + run.plan.jobs:
        spec = d["spec"]["template"]["spec"]
        pod_user = spec.get("securityContext", {}).get("runAsUser")
        for c in spec["containers"]:
            if d in run.plan.jobs:
                name = f"{d['metadata']['name']}-{c['name']}"
            else:
                name = f"{d['metadata']['name']}-pod-0-{c['name']}"
            got = podman("inspect", "--format",
                         "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", name).stdout.split()
            ctx = c.get("securityContext", {})
            want_ro = bool(ctx.get("readOnlyRootFilesystem"))
            user = ctx.get("runAsUser", pod_user)
            if got[0] != str(want_ro).lower() or (user is not None and
                                                   got[1].split(":")[0] != str(user)):
                fail(f"{name}: read-only root {got[0]}, user {got[1]}; the manifest says "
                     f"{want_ro}, {user}")
    log("every container runs with its manifest's read-only root and user")


def use_the_api(run):
    edge = next(d for d in run.plan.deployments if d["metadata"]["name"] == "kurt-edge")
    port = edge["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    admin = run.secret_of("kurt-accounts", "KURT_ADMIN_TOKEN")
    status, _, body = request("POST", port, "/v1/accounts", {"name": "images"},
                           {"Authorization": f"Bearer {admin}"})
    if status != 200:
        fail(f"POST /v1/accounts with the admin token: {status} {body}")
    key = json.loads(body)["secretKey"]
    auth = {"Authorization": f"Bearer {key}"}
    target = f"https://example.com/images/{secrets.token_hex(4)}"
    status, _, body = request("POST", port, "/v1/links", {"targetUrl": target}, auth)
    if status != 200:
        fail(f"POST /v1/links: {status} {body}")
    code = json.loads(body)["code"]
    status, headers, body = request("GET", port, f"/{code}")
    if status != 302 or headers.get("Location") != target:
        fail(f"GET /{code}: {status} {headers.get('Location')} {body}")
    log(f"created link {code}; GET /{code} -> 302 {target}")

    now = time.time()
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    status, _, body = request("POST", port, "/v1/reports", {
        "kind": "SUMMARY_JSON", "startTime": time.strftime(fmt, time.gmtime(now - 86400)),
        "endTime": time.strftime(fmt, time.gmtime(now + 3600))}, auth)
    if status != 200:
        fail(f"POST /v1/reports: {status} {body}")
    report = json.loads(body)["id"]
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while True:
        status, _, body = request("GET", port, f"/v1/reports/{report}", headers=auth)
        state = json.loads(body).get("state") if status == 200 else None
        if state == "SUCCEEDED":
            break
        if state == "FAILED" or time.monotonic() > deadline:
            run.logs()
            fail(f"report {report}: {status} {body}")
        time.sleep(0.5)
    log(f"report {report}: SUCCEEDED")
    status, _, body = request("GET", port, f"/v1/reports/{report}/content", headers=auth)
    if status != 200:
        fail(f"GET /v1/reports/{report}/content: {status} {body}")
    log(f"report content: {len(body)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("work")
    ap.add_argument("--tag", default="dev")
    args = ap.parse_args()
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    os.makedirs(args.work, exist_ok=True)
    plan = Plan(docs, args.tag)
    # What an interrupted run (a timeout) left playing.
    for name in ("services.yaml", "migrate.yaml"):
        if os.path.exists(os.path.join(args.work, name)):
            podman("kube", "down", os.path.join(args.work, name), check=False)
    remove_config_volumes(plan)
    ports_free(plan.ports())
    run = Run(plan, args.work)
    try:
        run.make_secrets()
        migrate(run)
        run.play("services.yaml", plan.played_config_maps() + plan.played_deployments())
        wait_ready(run)
        check_settings(run)
        use_the_api(run)
    finally:
        run.down()
    log("images ran with the manifests' settings: ready, redirect, create and report work")


if __name__ == "__main__":
    main()

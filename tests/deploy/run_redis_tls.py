"""Runs the prod overlay's Redis TLS sidecar (image kurt-redis-tls) with its real configuration
against a Redis that takes only TLS and requires a password, as ElastiCache does in prod.

tools/check-deploy --images builds the image (tools/images) and renders deploy/overlays/prod, then
runs this. From the rendered manifests it takes the sidecar of a Redis-using pod (its image, user,
read-only root, the ConfigMap's stunnel configuration and where it is mounted) and the address the
service is given (KURT_REDIS_URL). The Redis here is a redis-server on loopback with only a TLS
port, a certificate for the very name the configuration connects to and checks (the ElastiCache
endpoint; the container resolves it to 127.0.0.1), signed by a CA made for the run. Only ports and
the CA file differ from prod: the configuration's loopback port and Redis's are free ones here,
and the CA is the run's instead of the system store.

Then, with redis-cli talking plaintext to the sidecar as hiredis does in the pod: AUTH with the
password and PING answers PONG, and a value written reads back; without the password Redis
answers NOAUTH, with a wrong one WRONGPASS; Redis's port refuses plaintext (so the PONG came
through TLS). And the sidecar refuses servers it must not trust: one whose certificate has the
right name from another CA, and one whose certificate from the right CA names another host.

Usage: run_redis_tls.py RENDERED_PROD_YAML WORK_DIR [--tag dev]   (needs PyYAML, root, podman,
redis-server and redis-cli, openssl)
"""
import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTAINER = "kurt-redis-tls-check"


def log(message):
    print(f"[run_redis_tls] {message}", file=sys.stderr, flush=True)


def fail(message):
    raise SystemExit(f"FAIL: {message}")


def image_name(image):
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return
        except OSError:
            time.sleep(0.1)
    fail(f"{what} does not listen on 127.0.0.1:{port} after {timeout} s")


def sidecar_of(docs):
    """(workload, sidecar container, pod spec, stunnel configuration text, mount path,
    configuration file name, KURT_REDIS_URL) of the first pod with the kurt-redis-tls sidecar."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs
                   if d["kind"] == "ConfigMap"}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        spec = d["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []):
            if image_name(c["image"]) != "kurt-redis-tls":
                continue
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            (mount,) = c["volumeMounts"]
            files = config_maps[volumes[mount["name"]]["configMap"]["name"]]
            (file_name, text), = files.items()
            env = {}
            for source in spec["containers"][0].get("envFrom", []):
                env.update(config_maps.get(source.get("configMapRef", {}).get("name"), {}))
            return (d["metadata"]["name"], c, spec, text, mount["mountPath"], file_name,
                    env["KURT_REDIS_URL"])
    fail("no Deployment in the rendered prod overlay has the kurt-redis-tls sidecar")


def option(text, key):
    m = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", text, re.M)
    if not m:
        fail(f"the stunnel configuration has no {key}")
    return m.group(1)


def set_option(text, key, value):
    return re.sub(rf"^(\s*{key}\s*=\s*).+$", lambda m: m.group(1) + value, text, flags=re.M)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory):
    os.makedirs(directory, exist_ok=True)
    key, crt = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj",
            f"/O=Kurt check/CN={os.path.basename(directory)}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return directory


def make_server_cert(ca, name, out):
    """A server certificate for DNS name `name`, signed by the CA in directory `ca`."""
    key, csr, crt = out + ".key", out + ".csr", out + ".crt"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    ext = out + ".ext"
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(ca, "ca.crt"), "-CAkey",
            os.path.join(ca, "ca.key"), "-CAcreateserial", "-days", "2", "-sha256",
            "-extfile", ext, "-out", crt)
    return crt, key


class Redis:
    """A redis-server on 127.0.0.1 with only a TLS port and a password."""

    def __init__(self, work, port, password):
        self.work, self.port, self.password = work, port, password
        self.proc = None

    def start(self, crt, key, ca):
        self.stop()
        log_file = open(os.path.join(self.work, "redis.log"), "a")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", crt, "--tls-key-file", key, "--tls-ca-cert-file", ca,
             "--tls-auth-clients", "no", "--requirepass", self.password, "--save", "",
             "--appendonly", "no", "--dir", self.work],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_listening(self.port, "redis-server")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def cli(port, *args, password=None):
    """redis-cli's answer, on one line."""
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    if password is not None:
        cmd += ["--no-auth-warning", "-a", password]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=15)
    return " ".join((r.stdout + r.stderr).split())


def podman(*args, check=True):
    r = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        fail(f"podman {' '.join(args)}: {r.stderr.strip()}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("work")
    ap.add_argument("--tag", default="dev")
    args = ap.parse_args()
    for tool in ("redis-server", "redis-cli", "openssl", "podman"):
        if not shutil.which(tool):
            fail(f"{tool} is not installed")
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    workload, sidecar, spec, conf, mount_path, file_name, redis_url = sidecar_of(docs)

    # What the prod configuration says.
    host, _ = option(conf, "connect").rsplit(":", 1)
    checked = option(conf, "checkHost")
    accept = option(conf, "accept")
    url = urllib.parse.urlsplit(redis_url)
    if accept != f"{url.hostname}:{url.port}":
        fail(f"{workload}: --redis_url {redis_url} but the sidecar accepts on {accept}")
    log(f"{workload}'s sidecar: {accept} -> TLS to {host} (checked as {checked})")

    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    good_ca = make_ca(os.path.join(work, "ca"))
    other_ca = make_ca(os.path.join(work, "other-ca"))
    good = make_server_cert(good_ca, checked, os.path.join(work, "server"))
    impostor = make_server_cert(other_ca, checked, os.path.join(work, "impostor"))
    misnamed = make_server_cert(good_ca, "redis.elsewhere.example", os.path.join(work, "misnamed"))

    # The configuration as mounted in the pod, with this run's ports and CA file.
    redis_port, local_port = free_port(), free_port()
    conf_dir = os.path.join(work, "conf")
    os.makedirs(conf_dir)
    ca_in_container = f"{mount_path}/ca.crt"
    shutil.copy(os.path.join(good_ca, "ca.crt"), os.path.join(conf_dir, "ca.crt"))
    conf = set_option(conf, "accept", f"127.0.0.1:{local_port}")
    conf = set_option(conf, "connect", f"{host}:{redis_port}")
    conf = set_option(conf, "CAfile", ca_in_container)
    with open(os.path.join(conf_dir, file_name), "w") as f:
        f.write(conf)
    for name in os.listdir(conf_dir):
        os.chmod(os.path.join(conf_dir, name), 0o644)
    os.chmod(conf_dir, 0o755)

    password = secrets.token_hex(24)
    redis = Redis(work, redis_port, password)
    pod_ctx = spec.get("securityContext", {})
    ctx = sidecar.get("securityContext", {})
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    group = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
    run = ["run", "-d", "--name", CONTAINER, "--network", "host",
           "--add-host", f"{host}:127.0.0.1", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges",
           "-v", f"{conf_dir}:{mount_path}:ro"]
    if ctx.get("readOnlyRootFilesystem"):
        run.append("--read-only")
    if user is not None:
        run += ["--user", f"{user}:{group if group is not None else user}"]
    run.append(f"localhost/kurt-redis-tls:{args.tag}")
    podman("rm", "-f", CONTAINER, check=False)
    try:
        redis.start(*good, os.path.join(good_ca, "ca.crt"))
        podman(*run)
        wait_listening(local_port, "the sidecar")

        # What hiredis in the pod does: plaintext to the sidecar, AUTH, commands.
        got = cli(local_port, "PING", password=password)
        if got != "PONG":
            fail(f"AUTH + PING through the sidecar: {got!r}")
        key, value = f"kurt:check:{secrets.token_hex(4)}", secrets.token_hex(8)
        if cli(local_port, "SET", key, value, password=password) != "OK" or \
                cli(local_port, "GET", key, password=password) != value:
            fail("SET/GET through the sidecar did not round-trip")
        log("through the sidecar with the password: PONG, and a value written reads back")
        got = cli(local_port, "PING")
        if "NOAUTH" not in got:
            fail(f"PING without the password answered {got!r}, not NOAUTH")
        got = cli(local_port, "PING", password="not-the-password")
        if "WRONGPASS" not in got:
            fail(f"PING with a wrong password answered {got!r}, not WRONGPASS")
        log("without the password: NOAUTH; with a wrong one: WRONGPASS")
        got = cli(redis_port, "PING", password=password)
        if got == "PONG":
            fail("Redis answered plaintext: the test would not show TLS")
        log(f"Redis itself refuses plaintext ({got or 'connection closed'})")

        for label, (crt, key_file) in (("a certificate of another CA", impostor),
                                        ("a certificate for another name", misnamed)):
            redis.start(crt, key_file, os.path.join(good_ca, "ca.crt"))
            got = cli(local_port, "PING", password=password)
            if got == "PONG":
                fail(f"the sidecar trusted a server with {label}")
            log(f"a server with {label}: refused by the sidecar ({got or 'connection closed'})")
    except SystemExit:
        out = podman("logs", CONTAINER, check=False)
        print(f"--- {CONTAINER}\n{out.stdout}{out.stderr}", file=sys.stderr)
        raise
    finally:
        podman("rm", "-f", CONTAINER, check=False)
        redis.stop()
    log("the Redis TLS sidecar carries AUTH and commands over verified TLS, and only there")


if __name__ == "__main__":
    main()

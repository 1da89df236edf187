#!/usr/bin/env python3
"""Checks that the scripts and manifests name ports and topics as services/common/mesh.h does.

mesh.h is where C++ takes them from; bash and YAML cannot include it, so this test reads them all
and fails, naming the file, where one disagrees. (Each binary's ports are checked against the
manifests by tests/deploy/test_deploy.py, which runs the binaries.)
Usage: check_names.py SOURCE_DIR
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
mesh = (root / "services/common/mesh.h").read_text()
errors = []

programs = {
    m["binary"]: (int(m["grpc"]), int(m["metrics"]))
    for m in re.finditer(
        r'Program k\w+ = \{"(?P<binary>[\w-]+)", "[\w.]*", (?P<grpc>\d+),\s*(?P<metrics>\d+)\};',
        mesh)
}
topics = set(re.findall(r'k\w+Topic\[\] = "([\w.]+)";', mesh))
edge_port = int(re.search(r"kEdgeHttpPort = (\d+);", mesh).group(1))
links_h2_port = int(re.search(r"kLinksH2Port = (\d+);", mesh).group(1))
if len(programs) != 6 or len(topics) != 5:
    sys.exit(f"mesh.h: expected 6 programs and 5 topics, read {programs} and {topics}")


def check(what, found, expected, where):
    if found != expected:
        errors.append(f"{where}: {what} is {found}, mesh.h says {expected}")


# tools/services.sh: binary:gRPC port:HTTP port for every program the scripts start.
services = (root / "tools/services.sh").read_text()
started = {m[0]: (int(m[1]), int(m[2])) for m in re.findall(r"^\s*(kurt-[\w-]+):(\d+):(\d+)$",
                                                             services, re.M)}
check("the programs' ports", started, programs, "tools/services.sh")

# tools/lib.sh: the edge's port; tools/run: where the edge finds accounts.
lib = (root / "tools/lib.sh").read_text()
check("KURT_EDGE_PORT", int(re.search(r"KURT_EDGE_PORT:-(\d+)", lib).group(1)), edge_port,
      "tools/lib.sh")
run = (root / "tools/run").read_text()
check("KURT_ACCOUNTS_ADDRESS's port",
      int(re.search(r"KURT_ACCOUNTS_ADDRESS=[\d.]+:(\d+)", run).group(1)),
      programs["kurt-accounts"][0], "tools/run")

# tools/stack: the topics it creates.
stack = (root / "tools/stack").read_text()
listed = set(re.search(r"TOPICS=\(([^)]*)\)", stack).group(1).split())
check("the topics created", listed, topics, "tools/stack")

# deploy/base: the edge's upstreams, and each program's container ports.
kustomization = (root / "deploy/base/kustomization.yaml").read_text()
upstream = re.search(r"KURT_UPSTREAM=(\S+)", kustomization).group(1)
# "Service=kurt-x:port" entries; "Service/Method=..." ones are a method's own target.
upstreams = dict(re.findall(r"(?:^|,)[\w.]+=(kurt-[\w-]+):(\d+)", upstream))
for binary, port in upstreams.items():
    check(f"{binary}'s upstream port", int(port), programs[binary][0],
          "deploy/base/kustomization.yaml")
resolve = re.search(r"kurt\.links\.v1\.LinksService/Resolve=kurt-links:(\d+)", upstream)
check("links' Resolve upstream port", int(resolve.group(1)) if resolve else None, links_h2_port,
      "deploy/base/kustomization.yaml")
check("kurt-links' KURT_H2_PORT",
      int(re.search(r"KURT_H2_PORT=(\d+)", kustomization).group(1)), links_h2_port,
      "deploy/base/kustomization.yaml")
check("links' h2 port", int(re.search(r'if \[ "\$1" = 7101 \]; then echo (\d+)', services).group(1)),
      links_h2_port, "tools/services.sh")
for binary, (grpc, metrics) in programs.items():
    manifest = (root / f"deploy/base/{binary}.yaml").read_text()
    ports = {int(p) for p in re.findall(r"containerPort: (\d+)", manifest)}
    expected = {grpc, metrics} | ({links_h2_port} if binary == "kurt-links" else set())
    check(f"{binary}'s container ports", ports, expected, f"deploy/base/{binary}.yaml")

for e in errors:
    print(e)
if errors:
    sys.exit(1)
print("names agree with services/common/mesh.h")

"""Copies the Kubernetes JSON schemas shipped in PyPI's kubernetes-validate into a layout that
kubeconform reads offline: each file loses its absolute "$id" and its "$ref"s to
"/api/_definitions.json#…" become relative to the file's own directory.

Usage: prepare_schemas.py KUBERNETES_VERSION OUT_DIR   (run with the venv that has the package)
"""
import json
import pathlib
import sys

import kubernetes_validate

ABSOLUTE_DEFINITIONS = "/api/_definitions.json"


def relativise(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(ABSOLUTE_DEFINITIONS):
            node["$ref"] = "_definitions.json" + ref[len(ABSOLUTE_DEFINITIONS):]
        for value in node.values():
            relativise(value)
    elif isinstance(node, list):
        for value in node:
            relativise(value)


def main(version, out):
    root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    copied = 0
    for suffix in ("-local", "-local-strict"):
        src = root / f"v{version}{suffix}"
        if not src.is_dir():
            sys.exit(f"kubernetes-validate has no schemas for {version} ({src.name})")
        dst = pathlib.Path(out) / src.name
        dst.mkdir(parents=True, exist_ok=True)
        for path in src.glob("*.json"):
            schema = json.loads(path.read_text())
            relativise(schema)
            (dst / path.name).write_text(json.dumps(schema))
            copied += 1
    print(f"{copied} schemas for Kubernetes {version} in {out}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

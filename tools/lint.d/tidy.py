#!/usr/bin/env python3
"""Runs clang-tidy on each of the project's translation units, skipping the units already found
clean with the same inputs (tools/lint calls it).

A unit's inputs are its compile command, the .clang-tidy, its source and every header the build
recorded for it (ninja -t deps); their digest names a file in the cache directory once the unit is
clean. Findings in the project's own headers count; those in system and generated headers do not.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile


# Boost 1.74's Asio enables co_await only for compilers it knows; clang 14 in C++20 mode has it.
EXTRA_ARGS = ["--extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT=1",
              "--extra-arg=-DBOOST_ASIO_HAS_STD_COROUTINE=1"]


def file_digest(path, memo={}):
    if path not in memo:
        try:
            memo[path] = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
        except OSError:
            memo[path] = "missing"
    return memo[path]


def header_deps(build):
    """{object file (relative to build): [header paths]} from ninja's deps log."""
    out = subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True, text=True,
                         check=True).stdout
    deps, current = {}, None
    for line in out.splitlines():
        if line and not line[0].isspace():
            current = line.split(":", 1)[0]
            deps[current] = []
        elif line.strip() and current is not None:
            deps[current].append(line.strip())
    return deps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fix", action="store_true")
    parser.add_argument("sources", nargs="+")
    args = parser.parse_args()

    root = pathlib.Path.cwd().resolve()
    build = pathlib.Path(args.build).resolve()
    cache = pathlib.Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {str(root / s) for s in args.sources}
    config = (root / ".clang-tidy").read_bytes()
    header_filter = f"^{root}/(platform|services|edge|tools|tests)/"

    entries = [e for e in json.loads((build / "compile_commands.json").read_text())
               if str(pathlib.Path(e["file"]).resolve()) in wanted]
    deps = header_deps(str(build))
    todo = []
    for e in entries:
        # Paths of the checkout and the build tree do not count: a fresh clone reuses the results.
        command = e["command"].replace(str(build), "<build>").replace(str(root), "<root>")
        h = hashlib.sha256(config + command.encode())
        h.update(file_digest(e["file"]).encode())
        for dep in deps.get(e.get("output", ""), []):
            h.update(dep.encode() + file_digest(str(build / dep)).encode())
        key = cache / h.hexdigest()
        if args.fix or not key.exists():
            todo.append((e["file"], key))
    print(f"clang-tidy: {len(todo)} of {len(entries)} units to analyse", file=sys.stderr)

    # Fixes are exported per unit and applied together at the end, once each even where several
    # units report the same one in a shared header.
    fixes = pathlib.Path(tempfile.mkdtemp(prefix="kurt-tidy-fixes-"))

    def run(item):
        source, key = item
        cmd = ["clang-tidy", "-p", str(build), "--quiet", f"--header-filter={header_filter}",
               *EXTRA_ARGS, source]
        if args.fix:
            cmd.insert(1, f"--export-fixes={fixes / (hashlib.sha256(source.encode()).hexdigest() + '.yaml')}")
        result = subprocess.run(cmd, capture_output=True, text=True)
        findings = [l for l in result.stdout.splitlines()
                    if (" warning: " in l or " error: " in l) and l.startswith(str(root))]
        if result.returncode == 0 and not findings:
            key.touch()
        return source, findings, result.stdout if findings or result.returncode else ""

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for source, findings, output in pool.map(run, todo):
            if output:
                failed += 1
                print(output)
    if args.fix:
        apply = shutil.which("clang-apply-replacements") or "/usr/lib/llvm-14/bin/clang-apply-replacements"
        subprocess.run([apply, "--remove-change-desc-files", str(fixes)], check=True)
        print(f"clang-tidy: fixes applied; run tools/lint again to see what is left", file=sys.stderr)
        return
    shutil.rmtree(fixes, ignore_errors=True)
    if failed:
        sys.exit(f"clang-tidy: findings in {failed} units")


if __name__ == "__main__":
    main()

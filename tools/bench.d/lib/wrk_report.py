"""Reading wrk's reports, for the benchmarks in tools/bench.d/ (their inline Python runs with this
directory on PYTHONPATH)."""
import re
import sys


def ms(text):
    """wrk's duration ("850.00us", "2.03ms", "1.20s") in milliseconds."""
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)], 3)


def parse(path, what="2xx or 3xx"):
    """req/s, p50 and p99 of a `wrk --latency` report; exits naming the run when wrk failed or any
    answer was not `what` (wrk counts the others as "Non-2xx or 3xx")."""
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        sys.exit(f"wrk {path} failed:\n{text}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if bad and int(bad.group(1)):
        sys.exit(f"wrk {path}: {bad.group(1)} answers were not {what}")
    return {"rps": round(float(rps.group(1))),
            "p50_ms": ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
            "p99_ms": ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))}

#!/usr/bin/env python3
"""The --ha shape (tools/run --ha) through its balancer, under load, while instances go away.

1. Every instance of every binary restarted one at a time (SIGTERM, a graceful drain) under a
   steady load of redirects and creates: no request fails.
2. One edge and one kurt-links replica SIGKILLed under the same load: at most 0.1% of requests
   fail, and every redirect answered 302 is counted by analytics exactly once (a click published
   twice, its first answer lost with kurt-links, is dropped by its click id: printed).
3. Through PgBouncer's transaction pooling, a CSV report over 1,000,000 clicks completes (no
   statement timeout leaks into its scan) and its notification arrives live over SSE (LISTEN
   works on its direct connection).
4. The database primary's node lost (Patroni and PostgreSQL SIGKILLed together) under the same
   load: a replica is promoted, every create answered 200 is on it, creates fail only as 503
   meanwhile and redirects not at all. Prints the window.
5. The Redis master SIGKILLed under redirects: Sentinel promotes the replica, no redirect fails,
   and the rate limits apply again afterwards, kept on the new master; the edges' subscriptions
   to changed links followed it, so a link deleted then answers 404 at every edge within 1 s.

Each prints what it measured. Needs the --ha stack running (tools/test starts it) and the built
binaries; starts Kurt's binaries in the --ha shape itself and leaves them running.
Usage: ha_shape_test.py SOURCE_DIR [TEST_NAME...]
"""
import collections
import datetime
import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
STATE = pathlib.Path(os.environ.get("KURT_STATE_DIR", ROOT / ".kurt"))
LINKS = 20
THREADS = 4
CREATE_EVERY = 10  # one request in ten is a create, the others are redirects


def tool(*args, **kwargs):
    return subprocess.run([str(ROOT / "tools" / args[0]), *args[1:]], check=True,
                          text=True, **kwargs)


def read_env(path):
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


class Load:
    """THREADS clients on keep-alive connections to the balancer until stop()."""

    def __init__(self, port, key, codes, timeout=10):
        self.port, self.key, self.codes = port, key, codes
        self.timeout = timeout
        self.redirects = collections.Counter()  # code -> 302s received
        self.created = 0
        self.created_codes = []
        self.creates = []  # (start, end, outcome) of every create, monotonic seconds
        self.failures = collections.Counter()  # "METHOD status/error" -> count
        self.requests = 0
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(THREADS)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        for t in self.threads:
            t.join()

    def run(self, n):
        conn = None
        i = n
        while self.running:
            i += THREADS
            create = i % CREATE_EVERY == 0
            code = self.codes[i % len(self.codes)]
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            # Each request from an address of its own (X-Forwarded-For; the balancer and the
            # edges trust loopback), so that the limit per address never holds the load back.
            headers = {"X-Forwarded-For": f"10.{n}.{(i // 256) % 256}.{i % 256}"}
            start = time.monotonic()
            body = b""
            try:
                if create:
                    conn.request("POST", "/v1/links",
                                  body=json.dumps({"targetUrl": f"https://example.com/ha/{i}"}),
                                  headers={**headers, "Authorization": f"Bearer {self.key}",
                                           "Content-Type": "application/json"})
                else:
                    conn.request("GET", f"/{code}",
                                  headers={**headers, "User-Agent": "kurt-ha-test"})
                res = conn.getresponse()
                body = res.read()
                outcome = res.status
                if res.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                outcome = type(e).__name__
                conn.close()
                conn = None
            with self.lock:
                self.requests += 1
                if create:
                    self.creates.append((start, time.monotonic(), outcome))
                if create and outcome == 200:
                    self.created += 1
                    self.created_codes.append(json.loads(body)["code"])
                elif not create and outcome == 302:
                    self.redirects[code] += 1
                else:
                    self.failures[f"{'POST' if create else 'GET'} {outcome}"] += 1

    def first_create_after(self, t):
        """When the first create started after monotonic time t ended OK, or None."""
        with self.lock:
            ends = [end for start, end, outcome in self.creates if start > t and outcome == 200]
        return min(ends) if ends else None

    def summary(self):
        failed = sum(self.failures.values())
        return (f"{self.requests} requests, {sum(self.redirects.values())} redirects, "
                f"{self.created} creates, {failed} failed {dict(self.failures)}")


class HaShapeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = dict(os.environ, KURT_SKIP_BUILD="1",
                   # The load's creates come from one account: throttling is not the subject
                   # here. Its requests come from many addresses (Load), and the limits per
                   # address stay on, as deployed (50 per second, a burst of 100).
                   KURT_RATE_PER_ACCOUNT="0")
        tool("run", "--ha", "--detach", env=env, stdout=subprocess.DEVNULL)
        cls.env = read_env(STATE / "env")
        cls.stack = read_env(STATE / "ha" / "stack.env")
        cls.wait_for_kafka_in_sync()
        url = cls.env["KURT_EDGE_URL"]
        cls.port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=10)
        conn.request("POST", "/v1/accounts", body=json.dumps({"name": "ha-shape"}),
                     headers={"Authorization": f"Bearer {cls.env['KURT_ADMIN_TOKEN']}",
                              "Content-Type": "application/json"})
        res = conn.getresponse()
        body = res.read()
        assert res.status == 200, body
        cls.key = json.loads(body)["secretKey"]

    @classmethod
    def wait_for_kafka_in_sync(cls):
        """Until no partition lacks a replica (a broker killed by an earlier test catching up):
        meanwhile acks=all waits on it, held cached redirects outlive their hold and go out
        before their click is durable, and the SIGKILL test would measure that instead."""
        deadline = time.monotonic() + 120
        while True:
            out = tool("kafka", "topics", "--bootstrap-server",
                       cls.stack["KURT_KAFKA_BROKERS"].split(",")[0], "--describe",
                       "--under-replicated-partitions", stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL).stdout
            if not out.strip():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Kafka partitions still under-replicated:\n{out}")
            time.sleep(2)

    def new_links(self):
        codes = []
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for i in range(LINKS):
            conn.request("POST", "/v1/links",
                         body=json.dumps({"targetUrl": f"https://example.com/ha-target/{i}"}),
                         headers={"Authorization": f"Bearer {self.key}",
                                  "Content-Type": "application/json"})
            res = conn.getresponse()
            body = res.read()
            self.assertEqual(res.status, 200, body)
            codes.append(json.loads(body)["code"])
        return codes

    def instances(self):
        out = tool("service", "list", stdout=subprocess.PIPE).stdout
        return [line.split(":", 1)[0] for line in out.splitlines()]

    def metric(self, binary, series):
        """The sum of a metric series over the running instances of a binary."""
        total = 0.0
        out = tool("service", "list", stdout=subprocess.PIPE).stdout
        for line in out.splitlines():
            _, bin_, _, http = line.split()[0].split(":")
            if bin_ != binary:
                continue
            page = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{http}/metrics"], text=True,
                                  stdout=subprocess.PIPE).stdout
            for row in page.splitlines():
                if row.startswith(series + " "):
                    total += float(row.split()[1])
        return total

    def counted(self, codes):
        sql = ("SELECT code, count(*) FROM clicks WHERE code IN (" +
               ",".join(f"'{c}'" for c in codes) + ") GROUP BY code")
        out = subprocess.run(["psql", "-X", "-A", "-t", "-F", " ", "-d",
                              self.env["KURT_PG_PRIMARY_URL"], "-c", sql],
                             check=True, text=True, stdout=subprocess.PIPE).stdout
        return collections.Counter({c: int(n) for c, n in
                                    (line.split() for line in out.splitlines() if line)})

    def test_1_rolling_restart_fails_no_request(self):
        codes = self.new_links()
        started = time.monotonic()
        with Load(self.port, self.key, codes) as load:
            time.sleep(2)
            for instance in self.instances():
                tool("service", "restart", instance, stderr=subprocess.DEVNULL)
                time.sleep(1)
            time.sleep(2)
        print(f"rolling restart of {len(self.instances())} instances in "
              f"{time.monotonic() - started:.0f} s: {load.summary()}", flush=True)
        self.assertGreater(sum(load.redirects.values()), 1000, load.summary())
        self.assertEqual(sum(load.failures.values()), 0, load.summary())

    def test_2_killed_edge_and_links_replica_lose_no_counted_redirect(self):
        codes = self.new_links()
        with Load(self.port, self.key, codes) as load:
            time.sleep(3)
            tool("service", "kill", "kurt-edge-1", stderr=subprocess.DEVNULL)
            tool("service", "kill", "kurt-links-1", stderr=subprocess.DEVNULL)
            time.sleep(5)
            tool("service", "start", "kurt-links-1", stderr=subprocess.DEVNULL)
            tool("service", "start", "kurt-edge-1", stderr=subprocess.DEVNULL)
            time.sleep(3)
        failed = sum(load.failures.values())
        print(f"SIGKILL of kurt-edge-1 and kurt-links-1: {load.summary()} "
              f"({100.0 * failed / load.requests:.3f}% failed)", flush=True)
        self.assertLessEqual(failed, load.requests / 1000, load.summary())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counted = self.counted(codes)
            if counted == load.redirects:
                break
            time.sleep(1)
        missing = load.redirects - counted
        extra = counted - load.redirects
        # Clicks kurt-links published twice (its answer lost with the process): dropped by
        # analytics by their click id; summed over both analytics replicas since they started.
        repeated = self.metric("kurt-analytics",
                               'kurt_analytics_clicks_total{outcome="repeated"}')
        print(f"302s: {sum(load.redirects.values())}, clicks counted: "
              f"{sum(counted.values())} (missing {sum(missing.values())}, "
              f"extra {sum(extra.values())}); second events of a click dropped by analytics: "
              f"{repeated:.0f}", flush=True)
        self.assertEqual(counted, load.redirects)

    # --- the database's primary --------------------------------------------------------------

    def patroni_members(self):
        """Patroni's view of the cluster: member name -> (role, state), from any member."""
        for url in self.stack["KURT_PATRONI_URLS"].split(","):
            try:
                with urllib.request.urlopen(f"{url}/cluster", timeout=2) as res:
                    members = json.load(res)["members"]
                return {m["name"]: (m["role"], m.get("state", "")) for m in members}
            except OSError:
                continue
        return {}

    def patroni_leader(self):
        for name, (role, _) in self.patroni_members().items():
            if role == "leader":
                return name
        return None

    def kill_pg_node(self, member):
        """SIGKILLs the member's Patroni, its postmaster and the postmaster's children at once
        (Patroni alone would restart PostgreSQL in place)."""
        ha = STATE / "ha"
        patroni = int((ha / "run" / f"{member}.pid").read_text().split()[0])
        postmaster = int((ha / "pg" / member / "data" / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], text=True,
                                  stdout=subprocess.PIPE).stdout.split()
        for pid in [patroni, postmaster, *map(int, children)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def restore_pg_node(self, member):
        """The killed member back, as a streaming replica (the tests after this one need all
        three)."""
        tool("stack", "start", "--ha", member, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            role, state = self.patroni_members().get(member, ("", ""))
            if role in ("replica", "sync_standby") and state in ("running", "streaming"):
                return
            time.sleep(1)
        self.fail(f"{member} did not rejoin as a replica: {self.patroni_members()}")

    def test_4_losing_the_database_primary_loses_no_acknowledged_create(self):
        leader = self.patroni_leader()
        self.assertIsNotNone(leader, self.patroni_members())
        codes = self.new_links()
        try:
            with Load(self.port, self.key, codes, timeout=60) as load:
                time.sleep(3)
                self.assertGreater(load.created, 0, load.summary())
                self.kill_pg_node(leader)
                killed_at = time.monotonic()  # after the kill: a create started before it may end OK
                deadline = killed_at + 90
                while load.first_create_after(killed_at) is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(3)
            recovered = load.first_create_after(killed_at)
            new_leader = self.patroni_leader()
        finally:
            self.restore_pg_node(leader)
        self.assertIsNotNone(recovered, f"no create succeeded within 90 s: {load.summary()}")
        window = recovered - killed_at
        print(f"primary {leader} lost (Patroni and PostgreSQL SIGKILLed), {new_leader} promoted; "
              f"creates acknowledged again after {window:.1f} s: {load.summary()}", flush=True)
        self.assertNotEqual(new_leader, leader)
        # During the window creates fail only as 503 (retry later), never 500; redirects not at all.
        for failure in load.failures:
            self.assertEqual(failure, "POST 503", load.summary())
        self.assertLess(window, 30, "aim: under 15 s")
        # Every create answered 200, before, during or after, is on the new primary.
        created = set(load.created_codes)
        sql = ("SELECT code FROM links WHERE code IN (" +
               ",".join(f"'{c}'" for c in created) + ")")
        out = subprocess.run(["psql", "-X", "-A", "-t", "-d", self.env["KURT_PG_PRIMARY_URL"],
                              "-c", sql], check=True, text=True, stdout=subprocess.PIPE).stdout
        stored = set(out.split())
        print(f"acknowledged creates: {len(created)}, on the new primary: "
              f"{len(created & stored)}", flush=True)
        self.assertEqual(created - stored, set())

    # --- Redis's master -----------------------------------------------------------------------

    def redis_cli(self, port, *args):
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                              check=True, text=True, stdout=subprocess.PIPE,
                              env=dict(os.environ,
                                       REDISCLI_AUTH=self.stack["KURT_REDIS_PASSWORD"])).stdout

    def redis_master(self):
        sentinel = self.stack["KURT_REDIS_SENTINELS"].split(",")[0].rsplit(":", 1)[1]
        out = self.redis_cli(sentinel, "SENTINEL", "get-master-addr-by-name",
                             self.stack["KURT_REDIS_MASTER_NAME"]).split()
        return int(out[1])

    def limited(self, address, n=300):
        """How many of n quick redirects from `address` the rate limit refused (429)."""
        refused = 0
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for _ in range(n):
            conn.request("GET", "/nosuchcode", headers={"X-Forwarded-For": address})
            res = conn.getresponse()
            res.read()
            refused += res.status == 429
        return refused

    def test_5_losing_the_redis_master_fails_no_redirect_and_limits_apply_again(self):
        # The limits per address (50 per second, a burst of 100) are kept in Redis.
        try:
            self.assertGreater(self.limited("203.0.113.1"), 0, "no rate limit before the fault")
            codes = self.new_links()
            old = self.redis_master()
            pid = int(next(line.split(":")[1] for line in
                           self.redis_cli(old, "INFO", "server").splitlines()
                           if line.startswith("process_id:")))
            with Load(self.port, self.key, codes) as load:
                time.sleep(3)
                killed_at = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                deadline = killed_at + 60
                new = old
                while new == old and time.monotonic() < deadline:
                    time.sleep(0.2)
                    try:
                        new = self.redis_master()
                    except subprocess.CalledProcessError:
                        pass
                promoted = time.monotonic() - killed_at
                time.sleep(5)
            print(f"Redis master :{old} SIGKILLed, :{new} promoted after {promoted:.1f} s: "
                  f"{load.summary()}", flush=True)
            self.assertNotEqual(new, old, "Sentinel promoted no replica")
            self.assertEqual(sum(load.failures.values()), 0, load.summary())
            self.assertGreater(sum(load.redirects.values()), 500, load.summary())
            # The limits apply again, kept on the promoted master (not each edge's own buckets).
            refused = self.limited("203.0.113.2")
            keys = self.redis_cli(new, "EXISTS", "kurt:rl:ip:203.0.113.2").strip()
            print(f"after the failover: {refused} of 300 quick requests from one address refused "
                  f"(429); its bucket on the new master: {keys == '1'}", flush=True)
            self.assertGreater(refused, 0)
            self.assertEqual(keys, "1")
            # The edges' subscriptions to changed links followed the master too: a link deleted
            # now leaves every edge's cache within a second.
            took = self.deleted_link_leaves_every_edge()
            print(f"after the failover: a deleted link answered 404 at every edge "
                  f"{took * 1000:.0f} ms after the DELETE", flush=True)
            self.assertLess(took, 1.0)
        finally:
            tool("stack", "start", "--ha", "redis-1", stdout=subprocess.DEVNULL)
            tool("stack", "start", "--ha", "redis-2", stdout=subprocess.DEVNULL)

    def edge_ports(self):
        out = tool("service", "list", stdout=subprocess.PIPE).stdout
        return [int(line.split()[0].split(":")[3]) for line in out.splitlines()
                if line.split()[0].split(":")[1] == "kurt-edge"]

    def deleted_link_leaves_every_edge(self):
        """Caches a new link at every edge, deletes it, and returns the seconds until every
        edge answers 404 (at most 5, the cached entry's max-age, when no edge heard of it)."""
        code = self.api("POST", "/v1/links", {"targetUrl": "https://example.com/ha-deleted"})["code"]
        ports = self.edge_ports()
        self.assertEqual(len(ports), 2, ports)
        def status(port):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", f"/{code}")
                res = conn.getresponse()
                res.read()
                return res.status
            finally:
                conn.close()

        for port in ports:
            self.assertEqual([status(port), status(port)], [302, 302])
        deleted = time.monotonic()
        self.api("DELETE", f"/v1/links/{code}")
        for port in ports:
            while status(port) != 404 and time.monotonic() - deleted < 5:
                time.sleep(0.01)
        return time.monotonic() - deleted

    def api(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Authorization": f"Bearer {self.key}",
                              "Content-Type": "application/json"})
        res = conn.getresponse()
        data = res.read()
        self.assertEqual(res.status, 200, f"{method} {path}: {res.status} {data!r}")
        return json.loads(data)

    def test_3_report_over_a_million_clicks_through_pgbouncer_is_notified_live(self):
        rows = 1_000_000
        code = self.api("POST", "/v1/links",
                        {"targetUrl": "https://example.com/ha-report"})["code"]
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        start = now - datetime.timedelta(hours=2)
        # The clicks go straight into the table (generating a million through Kafka is not the
        # subject); the report reads them on a replica through PgBouncer, as deployed.
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.stack["KURT_PG_ADMIN_URL"],
             "-c", "SET statement_timeout = 0",
             "-c", f"""INSERT INTO clicks (code, click_time, event_id, referrer, user_agent,
                                          client_hash, kafka_partition, kafka_offset)
                       SELECT '{code}', timestamptz '{start.isoformat()}' + i * interval '1 ms',
                              'ha-report-' || i, 'https://ref.example/', 'kurt-ha-test', '',
                              0, i
                       FROM generate_series(1, {rows}) AS i"""],
            check=True)

        # The stream is open before the report is asked for: its notification must come live.
        events = []
        opened = threading.Event()

        def listen():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            conn.request("GET", "/v1/notifications:stream",
                         headers={"Authorization": f"Bearer {self.key}",
                                  "Accept": "text/event-stream"})
            res = conn.getresponse()
            opened.set()
            if res.status != 200:
                events.append(f"status {res.status}")
                return
            for raw in res:
                line = raw.decode().rstrip("\n")
                if line.startswith("data:"):
                    events.append(line[5:].strip())
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        self.assertTrue(opened.wait(30))
        time.sleep(1)  # the stream is registered with kurt-notifications
        t0 = time.monotonic()
        report = self.api("POST", "/v1/reports", {
            "kind": "CLICKS_CSV", "code": code,
            "startTime": start.isoformat().replace("+00:00", "Z"),
            "endTime": (now + datetime.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")})
        listener.join(600)
        elapsed = time.monotonic() - t0
        self.assertTrue(events, "no notification arrived over SSE within 600 s")
        self.assertIn(report["id"], events[0])
        done = self.api("GET", f"/v1/reports/{report['id']}")
        self.assertEqual(done["state"], "SUCCEEDED", done)
        self.assertEqual(int(done["rowCount"]), rows, done)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", f"/v1/reports/{report['id']}/content",
                     headers={"Authorization": f"Bearer {self.key}"})
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        lines = size = 0
        while chunk := res.read(1 << 20):
            lines += chunk.count(b"\n")
            size += len(chunk)
        self.assertEqual(lines, rows + 1)  # the header
        print(f"report over {rows} clicks through PgBouncer: notified over SSE after "
              f"{elapsed:.1f} s; {size / 1e6:.0f} MB, {lines} lines", flush=True)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[2:], verbosity=2)

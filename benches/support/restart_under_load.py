#!/usr/bin/env python3
"""A PostgreSQL restart under load, from outside (docs/reliability.md).

Six clients send code requests for new numbers (two in three requests: each writes a code and
its SMS) and round reads to a running service, about 170 requests a second, while
`pg_ctlcluster … restart` runs once. Run the service with a per-address code limit that six
clients from one address stay under (APP_LOGIN__ADDRESS_CODES_PER_HOUR=1000000). Prints every status
seen, the Retry-After values of the 503s, and the statuses per second.

    python3 benches/support/restart_under_load.py PORT [SECONDS] [RESTART_AT]
"""
import collections
import http.client
import json
import random
import subprocess
import sys
import threading
import time

port = int(sys.argv[1])
duration = float(sys.argv[2]) if len(sys.argv) > 2 else 10
restart_at = float(sys.argv[3]) if len(sys.argv) > 3 else 3
cluster = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()[0]

counts = collections.Counter()
per_second = collections.defaultdict(collections.Counter)
retry_after = collections.Counter()
lock = threading.Lock()
start = time.time()
# Fresh numbers on every run, so that no request waits out a phone's one-a-minute limit.
prefix = 139
sequence = [random.randrange(10**7)]


def client():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    while time.time() - start < duration:
        with lock:
            sequence[0] += 1
            n = sequence[0]
        try:
            if n % 3:
                body = json.dumps({"phone": "%d%08d" % (prefix, n % 10**8)})
                conn.request("POST", "/api/login/code", body, {"Content-Type": "application/json"})
            else:
                conn.request("GET", "/api/rounds/1")
            response = conn.getresponse()
            response.read()
            status = response.status
            if status == 503:
                retry_after[response.getheader("Retry-After")] += 1
        except Exception as e:  # a connection the service dropped is a failure too
            status = "connection: " + type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        with lock:
            counts[status] += 1
            per_second[int(time.time() - start)][status] += 1
        time.sleep(0.03)


def restart():
    time.sleep(restart_at)
    began = time.time()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"], check=True
    )
    print("restart took %.2f s (at %.1f s)" % (time.time() - began, began - start))


threads = [threading.Thread(target=client) for _ in range(6)] + [threading.Thread(target=restart)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("statuses", dict(counts))
print("Retry-After of the 503s", dict(retry_after))
for second in sorted(per_second):
    print(second, dict(per_second[second]))

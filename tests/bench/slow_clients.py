#!/usr/bin/python3
"""Slow clients against the controller's API: prints what other clients see.

    tests/bench/slow_clients.py                    # 200 connections held for 60 s
    tests/bench/slow_clients.py --connections 50 --seconds 10

Starts build/controller/streamserver (STREAMSERVER_BUILD_DIR selects the build
tree) on a free loopback port with a fresh data directory, opens CONNECTIONS
connections that each send a request line and then one header line every
--interval seconds, never finishing the header (a "slowloris"), and reopens
every one the server closes, so that CONNECTIONS are held for SECONDS.
Meanwhile one probe a --probe-every seconds asks GET /api/v1/services with a
10 s timeout.  Prints the probes' latency (p50, p95, max), how many were
answered 200 with JSON, and the controller's RSS, threads and open files
before and under the attack.  Everything stays on 127.0.0.1; the controller
and the connections are closed at the end, on an error or Ctrl-C too.

tests/e2e/test_hostile.py runs the same attack, smaller and shorter.
"""
import argparse
import json
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class SlowClients:
    """count connections to 127.0.0.1:port that trickle one header line each
    interval seconds and are reopened when the server closes them, until
    stop().  Runs in its own thread; opened counts every connection made."""

    def __init__(self, port, count, interval=2.0, host_header=None):
        self.port = port
        self.count = count
        self.interval = interval
        self.host_header = host_header or f"127.0.0.1:{port}"
        self.opened = 0
        self.closed_by_server = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._sel = selectors.DefaultSelector()
        self._socks = {}  # socket -> time of its next line

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(f"GET /api/v1/services HTTP/1.1\r\nHost: {self.host_header}\r\n".encode())
        except OSError:
            self.errors += 1
            s.close()
            return
        s.setblocking(False)
        self.opened += 1
        self._socks[s] = time.monotonic() + self.interval
        self._sel.register(s, selectors.EVENT_READ)

    def _drop(self, s):
        self._sel.unregister(s)
        del self._socks[s]
        s.close()

    def _run(self):
        n = 0
        while not self._stop.is_set():
            while len(self._socks) < self.count and not self._stop.is_set():
                self._open()
            for key, _ in self._sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                # an answer (the header deadline's 400) or EOF: the server
                # let go of this one; open another in its place
                self.closed_by_server += 1
                del data
                self._drop(s)
            now = time.monotonic()
            for s, due in list(self._socks.items()):
                if due <= now:
                    n += 1
                    try:
                        s.send(f"X-Slow-{n}: {'a' * 10}\r\n".encode())
                        self._socks[s] = now + self.interval
                    except OSError:
                        self._drop(s)
        for s in list(self._socks):
            self._drop(s)
        self._sel.close()

    def held(self):
        return len(self._socks)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(30)


def probe(url, timeout=10.0):
    """(seconds, status, body is JSON) of one GET; status None on no answer."""
    import urllib.error
    import urllib.request

    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except OSError:
        return time.monotonic() - t0, None, False
    try:
        json.loads(body)
        is_json = True
    except ValueError:
        is_json = False
    return time.monotonic() - t0, status, is_json


def proc_figures(pid):
    """RSS (KiB), threads and open files of pid."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kib"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=5.0,
                    help="seconds between a slow client's header lines (default 5)")
    ap.add_argument("--probe-every", type=float, default=0.5)
    args = ap.parse_args()
    if not 1 <= args.connections <= 1000:
        ap.error("--connections: 1 to 1000 (this is a loopback test, not a flood)")
    if not 1 <= args.seconds <= 600:
        ap.error("--seconds: 1 to 600")

    build = Path(os.environ.get("STREAMSERVER_BUILD_DIR") or REPO / "build")
    controller = build / "controller" / "streamserver"
    tmp = Path(tempfile.mkdtemp(prefix="streamserver-slow-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "streamserver.log", "wb")
    proc = subprocess.Popen([str(controller), "--listen", f"127.0.0.1:{port}", "--data-dir",
                             str(tmp / "data"), "--worker", str(build / "worker" / "streamworker")],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1/services"
    attack = None
    try:
        deadline = time.monotonic() + 30
        while probe(f"http://127.0.0.1:{port}/healthz", 2)[1] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"streamserver did not start; see {tmp / 'streamserver.log'}")
            time.sleep(0.1)
        before = proc_figures(proc.pid)
        quiet = [probe(url)[0] for _ in range(20)]

        attack = SlowClients(port, args.connections, args.interval).start()
        t_end = time.monotonic() + args.seconds
        while attack.held() < args.connections and time.monotonic() < t_end:
            time.sleep(0.05)
        results, held, under = [], [], dict(before)
        while time.monotonic() < t_end:
            results.append(probe(url))
            held.append(attack.held())
            for k, v in proc_figures(proc.pid).items():
                under[k] = max(under[k], v)
            time.sleep(args.probe_every)
        attack.stop()
        ok = [r for r in results if r[1] == 200 and r[2]]
        lat = [r[0] * 1000 for r in ok] or [float("nan")]
        print(f"slow clients: {args.connections} held for {args.seconds:g} s "
              f"(one header line each {args.interval:g} s; {attack.opened} connections opened, "
              f"{attack.closed_by_server} closed by the server's header deadline; "
              f"held min {min(held, default=0)})")
        print(f"probes: {len(ok)}/{len(results)} answered 200 with JSON; latency ms "
              f"p50 {statistics.median(lat):.1f}  p95 {percentile(lat, 0.95):.1f}  "
              f"max {max(lat):.1f}  (quiet: p50 {statistics.median(quiet) * 1000:.1f}, "
              f"max {max(quiet) * 1000:.1f})")
        print(f"controller: RSS {before['rss_kib'] / 1024:.1f} MiB, {before['threads']} threads, "
              f"{before['fds']} fds before; at most RSS {under['rss_kib'] / 1024:.1f} MiB, "
              f"{under['threads']} threads, {under['fds']} fds under the attack")
        return 0 if len(ok) == len(results) else 1
    finally:
        if attack is not None:
            attack.stop()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""One data directory, one controller.

A second streamserver started on a data directory that a running controller
uses would take over its jobs, and two workers would then write each of them.
It must refuse to start (exit 2) naming the directory and the pid holding it;
a lock left by a controller killed with SIGKILL must not block a restart.
"""
import signal
import subprocess
import time

from conftest import CONTROLLER, WORKER
from helpers import free_port


def _second(server, timeout=20):
    port = free_port()
    p = subprocess.run(
        [str(CONTROLLER), "--listen", f"127.0.0.1:{port}", "--data-dir", str(server.data_dir),
         "--worker", str(WORKER)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return p, port


def test_second_controller_on_a_used_data_dir_is_refused(server):
    sv = server.call("POST", "/services", {"name": "lockdw", "database_host": "127.0.0.1",
                                           "database_port": 5432, "spec_cu": 2}, expect=201)
    p, port = _second(server)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert str(server.data_dir) in out, out
    assert f"pid {server.proc.pid}" in out, out
    assert "--data-dir" in out, out
    # The first controller is untouched and still owns its data.
    assert server.call("GET", f"/services/{sv['id']}")["name"] == "lockdw"
    assert server.proc.poll() is None
    lock = server.data_dir / "streamserver.lock"
    assert lock.read_text().strip() == str(server.proc.pid)
    assert lock.stat().st_mode & 0o777 == 0o600


def test_a_killed_controllers_lock_does_not_block_a_restart(server):
    server.call("POST", "/services", {"name": "afterkill", "database_host": "127.0.0.1",
                                      "database_port": 5432, "spec_cu": 2}, expect=201)
    old = server.proc.pid
    server.stop(signal.SIGKILL)
    t0 = time.monotonic()
    server.start(timeout=10)
    started = time.monotonic() - t0
    assert server.proc.pid != old
    names = [s["name"] for s in server.call("GET", "/services")["items"]]
    assert "afterkill" in names
    assert (server.data_dir / "streamserver.lock").read_text().strip() == str(server.proc.pid)
    assert "in use by another streamserver" not in server.log_text(), started

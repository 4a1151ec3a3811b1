"""The harness of the multi-host tests (issue 13) checked on today's
controller: hosts are network namespaces on a private bridge
(tests/harness/netns.sh), Kafka and PostgreSQL listen on the bridge address
besides 127.0.0.1 (kafka.sh / pg.sh --listen), a controller runs in a host and
its workers load over the bridge; a host's link can be cut and restored, a
host killed, and nothing of it is left afterwards.
"""
import socket
import subprocess
import time

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from conftest import Server
from helpers import (TABLE5, check_delimited_table, create_job, create_service, create_source,
                     delimited_messages, delivery_job_dict, job_status, pid_alive, professional_job,
                     start_job, to_yaml, unique, wait_for, wait_rows, wait_state)
from hosts import NETNS, Hosts, namespaces, netns, new_name, ns_of_pid, ours, wait_unreachable

PARTITIONS = 4
N1 = 20_000  # before the cut
N2 = 10_000  # while the link is cut


def _job(srv, lan, prefix):
    """A topic, a table and an EXACTLY job whose service and source name the
    bridge address (what a worker in a host reaches); started.  Returns
    (topic, table, job id, status once running)."""
    topic = lan.kafka.create_topic(unique(prefix), partitions=PARTITIONS)
    table = lan.pg.create_table(unique("t_" + prefix), TABLE5)
    svc = create_service(srv, lan.host_pg)
    src = create_source(srv, svc["id"], lan.host_kafka, topic)
    conf = delivery_job_dict(lan.host_pg, lan.host_kafka, topic, table, consistency="EXACTLY",
                             max_row=2000, interval=200)
    job = create_job(srv, professional_job(src["id"], to_yaml(conf)))
    start_job(srv, job["id"])
    st = wait_state(srv, job["id"], "running", pred=lambda s: s["pid"])
    return topic, table, job["id"], st


def _stored(pg, topic):
    """The job's position as the progress table has it: {partition: next offset}."""
    return dict(pg.query("SELECT partition, next_offset FROM public.streamserver_progress "
                         "WHERE topic = %s", (topic,)))


def _high_watermarks(kafka, topic):
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": unique("wm"), "log_level": 3})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
    finally:
        c.close()


def _connect(ns, addr, port, timeout=3):
    """Tries a TCP connection from inside network namespace ns; returns
    "connected", "refused" or the error's name."""
    p = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", f"""
import socket
s = socket.socket()
s.settimeout({timeout})
try:
    s.connect(({addr!r}, {port}))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print(type(e).__name__)
"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout + 30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def _rules():
    return subprocess.run(["ip", "rule", "show"], stdout=subprocess.PIPE, text=True, check=True).stdout


def test_job_in_a_host_loads_over_the_bridge_and_survives_a_cut(hosts, lan):
    h1, = hosts.add(1)
    srv = h1.start_controller()
    assert ns_of_pid(srv.proc.pid) == h1.ns_inode(), "the controller does not run in host 1"
    topic, table, jid, st = _job(srv, lan, "hosts")
    worker = st["pid"]
    assert ns_of_pid(worker) == h1.ns_inode(), f"worker {worker} does not run in host 1"

    lan.kafka.produce(topic, delimited_messages(0, N1), partitions=PARTITIONS)
    wait_rows(lan.pg, table, N1, srv, jid)
    check_delimited_table(lan.pg, table, 0, N1)
    wait_for(lambda: sum(_stored(lan.pg, topic).values()) == N1, 60, 0.2, "the progress of N1 rows")

    h1.cut()
    err = wait_unreachable(srv)
    lan.kafka.produce(topic, delimited_messages(N1, N1 + N2), partitions=PARTITIONS)
    # The worker reaches neither broker nor database now (and had nothing in
    # flight: all N1 were stored before the cut): its position and the table
    # stand still while its lag is the messages produced since.
    pos = _stored(lan.pg, topic)
    hw = _high_watermarks(lan.kafka, topic)
    assert sum(pos.values()) == N1 and sum(hw.values()) == N1 + N2, (pos, hw)
    time.sleep(6)
    assert _stored(lan.pg, topic) == pos, "the job's stored offsets moved while its host was cut"
    assert lan.pg.count(table) == N1, "rows arrived while the host was cut"
    with pytest.raises(requests.RequestException):
        srv.request("GET", "/healthz", timeout=2)
    print(f"while cut: API {type(err).__name__}, stored offsets {pos}, high watermarks {hw}")

    h1.restore()
    wait_for(lambda: srv.request("GET", "/healthz", timeout=2).status_code == 200, 60, 0.2,
             "the API of host 1 after the restore")
    wait_rows(lan.pg, table, N1 + N2, srv, jid, timeout=180)
    check_delimited_table(lan.pg, table, 0, N1 + N2)
    st = wait_state(srv, jid, "running", timeout=60,
                    pred=lambda s: (s.get("lag") or {}).get("total") == 0)
    assert sum(_stored(lan.pg, topic).values()) == N1 + N2
    print(f"after the restore: {N1 + N2} rows, exact; restarts {st['restarts']}, worker {st['pid']} "
          f"(was {worker})")


def test_kill_host_leaves_nothing_running_and_it_reboots(hosts, lan):
    h1, h2 = hosts.add(2)
    srv = h1.start_controller()
    other = h2.start_controller()
    topic, table, jid, st = _job(srv, lan, "hostkill")
    worker = st["pid"]
    lan.kafka.produce(topic, delimited_messages(0, N2), partitions=PARTITIONS)
    wait_for(lambda: lan.pg.count(table) > 0, 60, 0.05, f"first rows in {table}")
    assert {srv.proc.pid, worker} <= h1.pids()

    ran = h1.kill()
    assert {srv.proc.pid, worker} <= ran
    assert srv.proc.returncode == -9, srv.proc.returncode
    assert h1.pids() == set(), f"processes left in {h1.ns}: {h1.pids()}"
    assert not pid_alive(worker)
    with pytest.raises(requests.ConnectionError):
        srv.request("GET", "/healthz", timeout=5)
    # The other host is untouched.
    assert other.request("GET", "/healthz").status_code == 200
    assert other.proc.poll() is None and other.proc.pid in h2.pids()

    # The host reboots: same data directory, the job resumes by itself.
    srv = h1.start_controller()
    lan.kafka.produce(topic, delimited_messages(N2, 2 * N2), partitions=PARTITIONS)
    wait_rows(lan.pg, table, 2 * N2, srv, jid, timeout=180)
    check_delimited_table(lan.pg, table, 0, 2 * N2)
    st = job_status(srv, jid)
    assert st["state"] == "running" and ns_of_pid(st["pid"]) == h1.ns_inode(), st


def test_hosts_teardown_removes_namespaces_and_processes(lan, tmp_path):
    # The hosts of the tests above (same lan) are gone already.
    assert [n for n in namespaces() if n.startswith(lan.name + "-")] == []
    hs = Hosts(lan, tmp_path, Server)
    problems = None
    try:
        h1, h2 = hs.add(2)
        h1.start_controller()
        sleeper = subprocess.Popen(h2.command("sleep", "600"), stdin=subprocess.DEVNULL)
        h2.cut()
        assert sleeper.pid in h2.pids()
    finally:
        problems = hs.close()
    assert problems == []
    sleeper.wait(timeout=30)
    assert ours(lan.name) == [lan.bridge], ours(lan.name)
    assert not pid_alive(sleeper.pid)
    assert not hs[1].controller.leftover_processes()


def test_netns_up_cut_restore_down():
    name = new_name("t")
    forward = open("/proc/sys/net/ipv4/ip_forward").read()
    try:
        out = netns("up", name, 2)
        bridge, baddr = out["BRIDGE"], out["BRIDGE_ADDR"]
        assert out["HOSTS"] == "2" and out["SUBNET"] == baddr.rsplit(".", 1)[0] + ".0/24"
        assert {f"{name}-1", f"{name}-2"} <= namespaces()
        assert open(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding").read().strip() == "0"
        assert f"iif {bridge} unreachable" in _rules()
        # The test reaches the hosts and the hosts reach the bridge address
        # and each other; nothing beyond the machine.
        listener = socket.socket()
        listener.bind((baddr, 0))
        listener.listen()
        port = listener.getsockname()[1]
        h1, h2 = out["HOST1_NS"], out["HOST2_NS"]
        assert _connect(h1, baddr, port) == "connected"
        assert _connect(h1, out["HOST2_ADDR"], 9) == "refused"  # host 2 answers, no one listens
        gateway = subprocess.run(["ip", "-4", "route", "show", "default"], stdout=subprocess.PIPE,
                                 text=True).stdout.split()
        if "via" in gateway:
            assert _connect(h1, gateway[gateway.index("via") + 1], 80) != "connected"
        assert _connect(h1, "192.0.2.123", 80) != "connected"

        sleeper = subprocess.Popen(["ip", "netns", "exec", h2, "sleep", "600"], stdin=subprocess.DEVNULL)
        netns("cut", name, 1)
        assert _connect(h1, baddr, port) != "connected"
        assert _connect(h2, baddr, port) == "connected"
        netns("restore", name, 1)
        wait_for(lambda: _connect(h1, baddr, port) == "connected", 30, 0.5, "host 1 after the restore")
        listener.close()
    finally:
        netns("down", name)
    assert ours(name) == []
    assert bridge not in _rules()
    assert bridge not in subprocess.run(["ip", "-o", "link"], stdout=subprocess.PIPE, text=True).stdout
    sleeper.wait(timeout=30)
    assert sleeper.returncode == -9
    netns("down", name)  # idempotent
    assert subprocess.run([str(NETNS), "status", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 1
    assert open("/proc/sys/net/ipv4/ip_forward").read() == forward

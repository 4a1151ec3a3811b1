"""Kafka over SASL_SSL (issue 10, section 3).

A broker of this module's own (conftest's secure_kafka: `tests/harness/kafka.sh
start DIR --secure`): its SASL_SSL listener (SCRAM-SHA-512, a CA made by the harness)
is what the jobs consume through, while the test produces over its PLAINTEXT
listener.  A second broker rather than making the session's secure: the
session broker stays exactly as every other test knows it (and E2E_KAFKA_BOOTSTRAP
may point it at a broker without SASL), and the refused logins and handshakes
of these tests do not fill its log; it costs a JVM with a 256 MB heap and
about 5 s of start-up, once per module.

The SASL password must appear nowhere: not in a job's status or last_error,
not in an API error, not in the controller's log (which holds the workers'
lines).  The tests never print it.
"""
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (COLUMNS5, TABLE5, check_delimited_table, create_job, create_service,
                     create_source, delimited_messages, delivery_job_dict, error_of, job_status,
                     professional_job, start_job, to_yaml, unique, wait_for, wait_query)

FAIL_TIMEOUT = 60


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A CA certificate that did not sign the broker's."""
    d = tmp_path_factory.mktemp("other_ca")
    p = subprocess.run(["openssl", "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048",
                        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-days", "30",
                        "-subj", "/CN=Some other CA", "-addext", "basicConstraints=critical,CA:TRUE"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert p.returncode == 0, p.stdout
    return str(d / "ca.crt")


class _Brokers:
    """What helpers.create_source and job_dict read: the address to consume from."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap


def _setup(server, pg, sk, prefix, messages, partitions=2, source_props=None, job_props=None):
    """Topic with messages (produced over PLAINTEXT), table, service, a
    source on the SASL_SSL listener and a started professional job; returns
    (topic, table, job_id, job_name)."""
    topic = sk.kafka.create_topic(unique(prefix), partitions=partitions)
    if messages:
        sk.kafka.produce(topic, messages, partitions=partitions)
    table = pg.create_table(unique("t_" + prefix), TABLE5)
    svc = create_service(server, pg)
    secure = _Brokers(sk.bootstrap)
    src = create_source(server, svc["id"], secure, topic, properties=source_props or {})
    conf = delivery_job_dict(pg, secure, topic, table, consistency="EXACTLY", max_row=2000,
                             interval=200, columns=COLUMNS5)
    conf["KAFKA"]["PROPERTIES"].update(job_props or {})
    job = create_job(server, professional_job(src["id"], to_yaml(conf)))
    start_job(server, job["id"])
    return topic, table, job["id"], job["name"]


def _assert_secret_absent(server, job_id, secrets, texts=()):
    """None of secrets in the job's status (last_error included), the
    controller's log (the workers' lines included) or the given texts.  The
    job's own object shows its effective configuration: masking the password
    there is the business of the secrets masking (test_security.py)."""
    places = {"status": server.request("GET", f"/jobs/{job_id}/status").text,
              "controller log": server.log_text()}
    for i, t in enumerate(texts):
        places[f"text {i}"] = t
    for what, text in places.items():
        for n, s in enumerate(secrets):
            found = s in text  # not in the assert: pytest would print both strings
            assert not found, f"secret #{n} appears in the {what}"


def _wait_failed(server, job_id):
    """Waits for state failed; the job must not have been restarted."""
    seen = []

    def failed():
        st = job_status(server, job_id)
        seen.append(st["state"])
        assert st["state"] != "running" or not st.get("messages_consumed"), \
            "the job consumed through a listener that should have refused it"
        return st if st["state"] == "failed" else None

    t0 = time.monotonic()
    st = wait_for(failed, FAIL_TIMEOUT, 0.2, "the job to fail")
    print(f"failed after {time.monotonic() - t0:.1f}s: {st.get('last_error')}")
    assert "retrying" not in seen and st["restarts"] == 0, \
        f"a configuration error must not be retried: states {sorted(set(seen))}, restarts {st['restarts']}"
    assert "exit code 2" in (st.get("last_exit") or ""), \
        f"last_exit should be the configuration exit code 2: {st.get('last_exit')!r}"
    return st


def test_harness_secure_lines(secure_kafka):
    """kafka.sh status repeats start's lines; the password is the DIR's own,
    in a file only its owner reads."""
    sk = secure_kafka
    st = sk.status()
    keys = ("BOOTSTRAP", "PID", "SECURE_BOOTSTRAP", "KAFKA_CA", "KAFKA_USER", "KAFKA_PASSWORD")
    same = {k: st.get(k) == sk.lines[k] for k in keys}
    assert all(same.values()), f"kafka.sh status differs from start in: {[k for k in keys if not same[k]]}"
    assert (os.stat(sk.dir / "kafka_password").st_mode & 0o777) == 0o600, \
        "the SCRAM password file is not mode 0600"
    assert len(sk.password) >= 32 and Path(sk.ca).is_file()


def test_sasl_ssl_job_drains_10000_exactly(server, pg, secure_kafka):
    sk = secure_kafka
    n = 10_000
    t0 = time.monotonic()
    _, table, jid, name = _setup(server, pg, sk, "sasl", delimited_messages(0, n),
                              source_props=sk.properties())
    wait_query(pg, f'SELECT count(*) FROM "{table}"', [(n,)], server, jid)
    check_delimited_table(pg, table, 0, n)
    # The offsets stored with the rows: 10,000 in all, the end of each partition.
    progress = pg.query("SELECT partition, next_offset FROM streamserver_progress "
                        "WHERE job_name = %s ORDER BY partition", (name,))
    assert [p for p, _ in progress] == [0, 1] and sum(o for _, o in progress) == n, progress
    # The offsets tool talks SASL_SSL too (worker --offsets).
    off = wait_for(lambda: (lambda b: b if b["total_lag"] == 0 else None)(
        server.call("GET", f"/jobs/{jid}/offsets")), 30, 0.5, "no lag in /offsets")
    assert {x["partition"]: x["stored_offset"] for x in off["partitions"]} == dict(progress), off
    assert {x["partition"]: x["high_watermark"] for x in off["partitions"]} == dict(progress), off
    st = job_status(server, jid)
    assert st["state"] == "running" and st["messages_consumed"] == n and st["rows_written"] == n, st
    _assert_secret_absent(server, jid, [sk.password])
    print(f"SASL_SSL: {n} messages drained in {time.monotonic() - t0:.1f}s")


def test_wrong_password_fails_with_the_sasl_error(server, pg, secure_kafka):
    sk = secure_kafka
    wrong = "wrong-" + os.urandom(8).hex()
    # The source is right (its CA given as PEM text: the handshake must pass
    # before the login is refused); the job's PROPERTIES override its password.
    ca_pem = Path(sk.ca).read_text()
    props = sk.properties(**{"ssl.ca.pem": ca_pem})
    del props["ssl.ca.location"]
    _, table, jid, _ = _setup(server, pg, sk, "saslpw", delimited_messages(0, 10),
                           source_props=props, job_props={"sasl.password": wrong})
    st = _wait_failed(server, jid)
    err = st.get("last_error") or ""
    expect = (f'Kafka {sk.bootstrap}: SASL authentication failed for user "{sk.user}" '
              f"(SCRAM-SHA-512): wrong sasl.username or sasl.password")
    assert expect in err, f"last_error: {err!r}"
    assert pg.count(table) == 0
    # The API's one-shot tools say the same at once (422), not a time-out.
    resp = server.request("GET", f"/jobs/{jid}/offsets", timeout=40)
    api_err = error_of(resp, 422, "invalid")
    assert expect in api_err["message"], api_err
    print(f"GET /offsets: {resp.status_code} {api_err}")
    _assert_secret_absent(server, jid, [sk.password, wrong], [resp.text])


def test_untrusted_ca_fails_with_the_tls_error(server, pg, secure_kafka, other_ca):
    sk = secure_kafka
    _, table, jid, _ = _setup(server, pg, sk, "saslca", delimited_messages(0, 10),
                           source_props=sk.properties(**{"ssl.ca.location": other_ca}))
    st = _wait_failed(server, jid)
    err = st.get("last_error") or ""
    expect = (f"Kafka {sk.bootstrap}: TLS: broker certificate not trusted (ssl.ca.location): "
              f"certificate verify failed")
    assert expect in err, f"last_error: {err!r}"
    assert pg.count(table) == 0
    resp = server.request("GET", f"/jobs/{jid}/offsets", timeout=40)
    api_err = error_of(resp, 422, "invalid")
    assert expect in api_err["message"], api_err
    _assert_secret_absent(server, jid, [sk.password], [resp.text])


def test_secure_broker_restart_is_an_outage_not_a_failure(server, pg, secure_kafka):
    """A broker restarting refuses connections and handshakes for a while:
    that must stay an outage (retried), never the configuration error of a
    refused login; the job then goes on through the same SASL_SSL listener."""
    sk = secure_kafka
    topic, table, jid, _ = _setup(server, pg, sk, "saslrs", delimited_messages(0, 1000),
                           source_props=sk.properties())
    wait_query(pg, f'SELECT count(*) FROM "{table}"', [(1000,)], server, jid)
    sk.stop()
    time.sleep(2)
    sk.start()
    sk.kafka.produce(topic, delimited_messages(1000, 2000), partitions=2)
    wait_query(pg, f'SELECT count(*) FROM "{table}"', [(2000,)], server, jid)
    check_delimited_table(pg, table, 0, 2000)
    st = job_status(server, jid)
    assert st["state"] == "running", st
    _assert_secret_absent(server, jid, [sk.password])

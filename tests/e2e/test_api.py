"""The REST contract of doc/API.md: errors, conflicts, paging, masking, the
status page."""
import pytest

from helpers import (COLUMNS5, TABLE5, create_job, create_service, create_source, error_of,
                     job_status, professional_job, start_job, stop_job, unique, wait_state,
                     wizard_job)


class _FakePG:
    """Connection values for jobs that are never started."""
    host, port, dbname, user = "127.0.0.1", 5432, "nowhere", "nobody"

    def __init__(self, password="never-shown-0"):
        self.password = password


class _FakeKafka:
    bootstrap = "127.0.0.1:9"


def _chain(server, pg=None, kafka=None, topic="t"):
    """A service, a source and a wizard job (not started)."""
    pg = pg or _FakePG()
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka or _FakeKafka(), topic)
    job = create_job(server, wizard_job(src["id"], pg, "t", [c for c, _ in COLUMNS5]))
    return svc, src, job


def test_healthz(server):
    assert server.call("GET", "/healthz") == {"status": "ok"}


def test_malformed_json_is_400(server):
    for path in ("/services", "/sources", "/jobs"):
        error_of(server.request("POST", path, data="{\"name\": "), 400, "malformed")
        error_of(server.request("POST", path, data="[1, 2]"), 400, "malformed")
    svc = create_service(server, _FakePG())
    error_of(server.request("PATCH", f"/services/{svc['id']}", data="not json"), 400, "malformed")


def test_missing_or_bad_fields_are_422_naming_the_field(server):
    error_of(server.request("POST", "/services", {"description": "no name"}), 422, "invalid", "name")
    error_of(server.request("POST", "/services", {"name": unique("s"), "spec_cu": 3}), 422, "invalid",
             "spec_cu")
    svc = create_service(server, _FakePG())
    assert svc["spec_cu"] == 8 and svc["status"] == "running" and svc["description"] == "e2e", svc

    src_body = {"service_id": svc["id"], "name": unique("src"), "brokers": "127.0.0.1:9",
                "topic": "t"}
    for missing in ("service_id", "name", "brokers", "topic"):
        body = {k: v for k, v in src_body.items() if k != missing}
        error_of(server.request("POST", "/sources", body), 422, "invalid", missing)
    error_of(server.request("POST", "/sources", dict(src_body, service_id=999999)), 422, "invalid",
             "service_id")
    error_of(server.request("POST", "/sources", dict(src_body, format="xml")), 422, "invalid",
             "format")
    error_of(server.request("POST", "/sources", dict(src_body, delimiter="||")), 422, "invalid",
             "delimiter")
    src = server.call("POST", "/sources", src_body, expect=201)
    assert (src["type"], src["format"], src["delimiter"], src["properties"]) == \
        ("kafka", "delimited", "|", {}), src

    job_body = wizard_job(src["id"], _FakePG(), "t", [c for c, _ in COLUMNS5])
    for missing in ("source_id", "name", "mode", "database", "table", "account", "fields"):
        body = {k: v for k, v in job_body.items() if k != missing}
        error_of(server.request("POST", "/jobs", body), 422, "invalid", missing)
    error_of(server.request("POST", "/jobs", dict(job_body, source_id=999999)), 422, "invalid",
             "source_id")
    error_of(server.request("POST", "/jobs", dict(job_body, fields=[])), 422, "invalid", "fields")
    error_of(server.request("POST", "/jobs", dict(job_body, mode="expert")), 422, "invalid", "mode")
    assert server.call("GET", "/jobs")["total"] == 0, "an invalid job was stored"


def test_duplicate_names_are_409(server):
    svc, src, job = _chain(server)
    error_of(server.request("POST", "/services", {"name": svc["name"]}), 409, "conflict")
    error_of(server.request("POST", "/sources", {
        "service_id": svc["id"], "name": src["name"], "brokers": "127.0.0.1:9", "topic": "t"}),
        409, "conflict")
    error_of(server.request("POST", "/jobs", wizard_job(src["id"], _FakePG(), "t", ["a"],
                                                        name=job["name"])), 409, "conflict")
    for kind in ("services", "sources", "jobs"):
        assert server.call("GET", f"/{kind}")["total"] == 1, kind


def test_delete_in_use_is_409_then_in_order_204(server):
    svc, src, job = _chain(server)
    err = error_of(server.request("DELETE", f"/sources/{src['id']}"), 409, "conflict")
    assert job["name"] in err["message"] or str(job["id"]) in err["message"], err
    error_of(server.request("DELETE", f"/services/{svc['id']}"), 409, "conflict")

    server.call("DELETE", f"/jobs/{job['id']}", expect=204)
    server.call("DELETE", f"/sources/{src['id']}", expect=204)
    server.call("DELETE", f"/services/{svc['id']}", expect=204)
    for kind, rid in (("jobs", job["id"]), ("sources", src["id"]), ("services", svc["id"])):
        error_of(server.request("GET", f"/{kind}/{rid}"), 404, "not_found")


def test_unknown_ids_and_routes_are_404(server):
    for path in ("/services/424242", "/sources/424242", "/jobs/424242", "/jobs/424242/status"):
        error_of(server.request("GET", path), 404, "not_found")
    error_of(server.request("POST", "/jobs/424242/start"), 404, "not_found")
    error_of(server.request("DELETE", "/services/424242"), 404, "not_found")
    error_of(server.request("PATCH", "/sources/424242", {"topic": "x"}), 404, "not_found")
    error_of(server.request("GET", "/api/v1/nothing"), 404, "not_found")


def test_wrong_verb_is_405_and_big_body_is_413(server):
    error_of(server.request("PUT", "/services"), 405, "method_not_allowed")
    error_of(server.request("DELETE", "/jobs"), 405, "method_not_allowed")
    big = '{"name": "%s"}' % ("x" * (1024 * 1024 + 10))
    error_of(server.request("POST", "/services", data=big), 413, "too_large")


def test_patch_service_and_source(server):
    svc, src, job = _chain(server)
    got = server.call("PATCH", f"/services/{svc['id']}", {"description": "new", "spec_cu": 4})
    assert (got["description"], got["spec_cu"], got["name"]) == ("new", 4, svc["name"]), got
    assert server.call("GET", f"/services/{svc['id']}")["spec_cu"] == 4
    error_of(server.request("PATCH", f"/services/{svc['id']}", {"spec_cu": 5}), 422, "invalid",
             "spec_cu")
    got = server.call("PATCH", f"/sources/{src['id']}", {"topic": "other"})
    assert got["topic"] == "other" and got["brokers"] == src["brokers"], got


def test_list_paging(server):
    ids = [create_service(server, _FakePG())["id"] for _ in range(5)]
    assert ids == sorted(ids)
    page = server.call("GET", "/services?page=1&page_size=2")
    assert [s["id"] for s in page["items"]] == ids[:2], page
    assert (page["total"], page["page"], page["page_size"]) == (5, 1, 2), page
    page = server.call("GET", "/services?page=2&page_size=2")
    assert [s["id"] for s in page["items"]] == ids[2:4], page
    page = server.call("GET", "/services?page=3&page_size=2")
    assert [s["id"] for s in page["items"]] == ids[4:], page
    page = server.call("GET", "/services")
    assert [s["id"] for s in page["items"]] == ids, page
    assert (page["total"], page["page"], page["page_size"]) == (5, 1, 30), page


UNSUPPORTED_YAML = """\
DATABASE: db
USER: u
PASSWORD: p
HOST: 127.0.0.1
PORT: 5432
KAFKA:
  INPUT:
    SOURCE:
      BROKERS: 127.0.0.1:9
      TOPIC: t
      FALLBACK_OFFSET: earliest
    VALUE:
      COLUMNS:
        - NAME: column_1
          TYPE: varchar(32)
        - NAME: column_2
          TYPE: bigint
      FORMAT: {format}
    ERROR_LIMIT: 0
  OUTPUT:
    SCHEMA: public
    TABLE: t
    MODE: {mode}
    MATCH_COLUMNS:
      - column_1
    UPDATE_COLUMNS:
      - column_2
  COMMIT:
    MAX_ROW: 1000
    MINIMAL_INTERVAL: 1000
"""


# Every CONSISTENCY of the seed's grammar is accepted now, and the effective
# YAML shows which one the job runs with.
@pytest.mark.parametrize("consistency,shown", [
    ("at-most", "at-most"), ("none", "none"), ("strong", "EXACTLY"), ("at-least", "ATLEAST")])
def test_every_consistency_is_accepted(server, consistency, shown):
    svc = create_service(server, _FakePG())
    src = create_source(server, svc["id"], _FakeKafka(), "t")
    config = (UNSUPPORTED_YAML.format(format="delimited", mode="INSERT")
              + f"    CONSISTENCY: {consistency}\n")
    job = server.request("POST", "/jobs", professional_job(src["id"], config))
    assert job.status_code == 201, job.text
    effective = server.request("GET", f"/jobs/{job.json()['id']}/config")
    assert effective.status_code == 200, effective.text
    lines = [l.strip() for l in effective.text.splitlines()]
    assert any(l.replace("'", "").replace('"', "") == f"CONSISTENCY: {shown}" for l in lines), \
        effective.text


def test_invalid_yaml_is_422(server):
    svc = create_service(server, _FakePG())
    src = create_source(server, svc["id"], _FakeKafka(), "t")
    err = error_of(server.request("POST", "/jobs", professional_job(
        src["id"], "DATABASE: db\nKAFKA: [unclosed\n")), 422, "invalid")
    assert err.get("details"), err
    config = UNSUPPORTED_YAML.format(format="delimited", mode="UPSERT")
    err = error_of(server.request("POST", "/jobs", professional_job(src["id"], config)),
                   422, "invalid")
    assert "MODE" in (err.get("field") or ""), err


def test_password_never_in_a_response(server):
    secret = "Sekr3t-" + unique("pw")
    svc = create_service(server, _FakePG())
    src = create_source(server, svc["id"], _FakeKafka(), "t")
    wiz = server.request("POST", "/jobs", wizard_job(src["id"], _FakePG(secret), "t", ["a", "b"]))
    assert wiz.status_code == 201, wiz.text
    assert secret not in wiz.text and wiz.json()["password"] == "****", wiz.text
    config = UNSUPPORTED_YAML.format(format="delimited", mode="INSERT").replace(
        "PASSWORD: p", f"PASSWORD: {secret}")
    pro = server.request("POST", "/jobs", professional_job(src["id"], config))
    assert pro.status_code == 201, pro.text
    assert secret not in pro.text, pro.text
    wid, pid = wiz.json()["id"], pro.json()["id"]

    patched = server.request("PATCH", f"/jobs/{wid}", {"password": secret + "2"})
    assert patched.status_code == 200 and secret not in patched.text, patched.text

    for path in ("/services", f"/services/{svc['id']}", "/sources", f"/sources/{src['id']}",
                 "/jobs", f"/jobs/{wid}", f"/jobs/{pid}", f"/jobs/{wid}/status",
                 f"/jobs/{pid}/status", "/"):
        resp = server.request("GET", path)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:500])
        assert secret not in resp.text, f"GET {path} shows the password: {resp.text[:2000]}"
    assert secret not in server.log_text(), "the password is in the controller's log"


def test_spec_cu_limits_running_jobs(server, pg, kafka):
    topic = kafka.create_topic(unique("cu"), partitions=1)
    table = pg.create_table(unique("t_cu"), TABLE5)
    svc = create_service(server, pg, spec_cu=2)
    assert svc["spec_cu"] == 2, svc
    src = create_source(server, svc["id"], kafka, topic)
    jobs = [create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5]))["id"]
            for _ in range(3)]
    start_job(server, jobs[0])
    start_job(server, jobs[1])
    err = error_of(server.request("POST", f"/jobs/{jobs[2]}/start"), 409, "conflict")
    assert "spec_cu" in err["message"], err
    assert job_status(server, jobs[2])["desired_state"] == "stopped"
    for jid in jobs[:2]:
        wait_state(server, jid, "running")

    # Stopping a job frees its slot.
    stop_job(server, jobs[0])
    wait_state(server, jobs[0], "stopped", timeout=30)
    start_job(server, jobs[2])
    wait_state(server, jobs[2], "running")


def test_status_page_shows_jobs(server, pg, kafka):
    topic = kafka.create_topic(unique("page"), partitions=1)
    table = pg.create_table(unique("t_page"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    running = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                            name=unique("page_running")))
    idle = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                         name=unique("page_idle")))
    start_job(server, running["id"])
    wait_state(server, running["id"], "running")

    resp = server.request("GET", "/")
    assert resp.status_code == 200, resp.text[:500]
    assert "text/html" in resp.headers.get("Content-Type", ""), resp.headers
    page = resp.text
    assert running["name"] in page and idle["name"] in page, page[:3000]
    assert "running" in page and "stopped" in page, page[:3000]
    # The real database password was handed to a worker: still nowhere to be seen.
    assert pg.password not in page
    assert pg.password not in server.log_text(), "the password is in the controller's log"

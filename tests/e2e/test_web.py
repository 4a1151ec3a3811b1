"""The status page (GET /, web/) in headless Chromium against a real
controller, PostgreSQL and Kafka: a running job whose rows-written figure
grows while the page refreshes itself in place, Stop, the new-job form with a
bad YAML and its error beside the text, and a server whose API needs a token
(and a read-only token, whose clicks show the 403).

Needs Debian's chromium and chromium-driver and python3-selenium
(scripts/install-deps.sh); a missing one fails the test.  The screenshot goes
to $E2E_ARTIFACTS/status-page-form.png (default: <build dir>/test-artifacts/);
test_web_job.py takes the one with trends and the job view.
"""
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from helpers import (COLUMNS5, REPO, TABLE5, create_job, create_service, create_source,
                     delimited_messages, job_status, job_yaml, professional_job, start_job,
                     unique, wait_for, wait_state, wizard_job, yaml_line)

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError as e:  # a missing dependency is a failure, never a skip
    raise ImportError(f"{e}: install python3-selenium (scripts/install-deps.sh)") from e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE_TIMEOUT = 60.0  # the page polls every 3 s; the machine is shared and slow
BUILD = Path(os.environ.get("STREAMSERVER_BUILD_DIR") or REPO / "build").resolve()


def artifacts_dir():
    d = Path(os.environ.get("E2E_ARTIFACTS") or BUILD / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def browser():
    """Headless Chromium through chromedriver, with a fresh profile."""
    for b, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(b, os.X_OK):
            pytest.fail(f"{b} is missing: apt-get install {pkg} (scripts/install-deps.sh)",
                        pytrace=False)
    profile = tempfile.mkdtemp(prefix="streamserver-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1250",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = None
    try:
        try:
            driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        except WebDriverException as e:
            pytest.fail(f"cannot start headless Chromium: {e.msg}", pytrace=False)
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# What the page shows, read in one script call (no stale elements between
# reads of a row that the page updates every 3 s).
READ_JOB = """
const tr = document.querySelector('tr[data-job-id="' + arguments[0] + '"]');
if (!tr || tr.offsetParent === null) return null;
const out = {};
for (const e of tr.querySelectorAll('[data-field]')) out[e.dataset.field] = e.textContent;
out.start_disabled = tr.querySelector('[data-action="start"]').disabled;
out.stop_disabled = tr.querySelector('[data-action="stop"]').disabled;
return out;
"""


def page_job(driver, job_id):
    """The job's row as the page shows it (visible), or None."""
    return driver.execute_script(READ_JOB, job_id)


def shown_int(text):
    return int(text.replace(",", ""))


def wait_page(driver, fn, what, timeout=PAGE_TIMEOUT):
    return wait_for(lambda: fn(driver), timeout, 0.2, what, retry_on=(WebDriverException,))


def refreshes(driver):
    return int(driver.execute_script(
        "return Number(document.documentElement.dataset.refreshes || 0)"))


def visible(driver, css):
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;",
        css)


def paste_yaml(driver, text):
    """Puts text into the form's YAML field in one go, as a paste does
    (send_keys would type it key by key)."""
    driver.execute_script("const t = document.getElementById('job-config'); t.value = arguments[0];"
                          "t.dispatchEvent(new Event('input'));", text)


def script_errors(driver):
    """The page's script errors from the console (failed requests, such as
    the 401, 403 and 422 the tests cause on purpose, are not script errors)."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]


def test_status_page_live_stop_and_form(server, pg, kafka, browser):
    topic = kafka.create_topic(unique("web"), partitions=2)
    table = pg.create_table(unique("t_web"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                        name=unique("web_job")))
    idle = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                         name=unique("web_idle")))
    jid = job["id"]
    kafka.produce(topic, delimited_messages(0, 2000), partitions=2)
    start_job(server, jid)
    wait_state(server, jid, "running")

    browser.get(server.base + "/")
    assert browser.title == "Streaming Server"
    first = wait_page(browser, lambda d: (lambda r: r if r and r["state"] == "running"
                                          and shown_int(r["rows_written"]) > 0 else None)(
                                              page_job(d, jid)),
                      f"job {jid}'s row to show running with rows written")
    assert first["name"] == job["name"] and first["source"] == src["name"], first
    idle_row = page_job(browser, idle["id"])
    assert idle_row is not None and idle_row["state"] == "stopped", idle_row
    assert idle_row["stop_disabled"] and not idle_row["start_disabled"], idle_row
    assert first["start_disabled"] and not first["stop_disabled"], first
    # Services and sources are listed too.
    assert browser.find_element(
        By.CSS_SELECTOR, f'#services-body tr[data-id="{svc["id"]}"] [data-field="name"]'
    ).text == svc["name"]
    src_row = browser.find_element(By.CSS_SELECTOR, f'#sources-body tr[data-id="{src["id"]}"]')
    assert topic in src_row.text and svc["name"] in src_row.text, src_row.text

    # A marker in the document's JS state survives only if the page is never
    # reloaded: the figures below must change under it.
    marker = uuid.uuid4().hex
    browser.execute_script("window.__e2eMarker = arguments[0];", marker)
    before = shown_int(first["rows_written"])
    refreshes_before = refreshes(browser)
    kafka.produce(topic, delimited_messages(2000, 5000), partitions=2)
    grown = wait_page(browser, lambda d: (lambda r: r if r and shown_int(r["rows_written"]) >= 5000
                                          else None)(page_job(d, jid)),
                      "the page's rows written to reach 5,000 without a reload")
    assert shown_int(grown["rows_written"]) > before, (before, grown)
    assert browser.execute_script("return window.__e2eMarker") == marker, \
        "the page was reloaded (its script state is gone)"
    assert refreshes(browser) > refreshes_before
    api_st = job_status(server, jid)
    assert shown_int(grown["rows_written"]) <= api_st["rows_written"], (grown, api_st)
    assert shown_int(grown["rows_rejected"]) == api_st["rows_rejected"] == 0, (grown, api_st)
    assert shown_int(grown["restarts"]) == api_st["restarts"], (grown, api_st)
    assert grown["last_error"] == "", grown

    # Lag: the worker reports it; both partitions drained -> 0, and the
    # per-partition detail opens on a click.
    drained = wait_page(browser, lambda d: (lambda r: r if r and r["lag"] == "0" else None)(
        page_job(d, jid)), "the page's lag total to show 0 once the topic is drained")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-field="lag"]').click()
    parts = wait_page(browser, lambda d: [e.text for e in d.find_elements(
        By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-field="lag_partitions"] li')
        if e.is_displayed()], "the lag detail to open")
    assert sorted(parts) == ["partition 0: 0", "partition 1: 0"], (parts, drained)

    # A bad YAML in the new-job form: the API's 422 details beside the text,
    # the line marked in the gutter, no job created.
    bad_yaml = job_yaml(pg, kafka, topic, table, mode="SMASH",
                        value={"COLUMNS": [{"NAME": c, "TYPE": t} for c, t in COLUMNS5],
                               "FORMAT": "delimited", "DELIMITED_OPTION": {"DELIMITER": "|"}})
    # Never started: a placeholder password keeps the real one off the screenshot.
    bad_yaml = bad_yaml.replace(f"PASSWORD: {pg.password}", "PASSWORD: change-me")
    assert pg.password not in bad_yaml
    bad_line = yaml_line(bad_yaml, "MODE:")
    # What the API answers the form's request (422, nothing stored).
    new_name = unique("web_form")
    refused = server.request("POST", "/jobs", professional_job(src["id"], bad_yaml, name=new_name))
    assert refused.status_code == 422, refused.text
    details = refused.json()["error"]["details"]
    expected_errors = [e for e in details if e["line"] == bad_line]
    assert expected_errors, f"the API finds nothing on line {bad_line}: {details}"
    jobs_before = server.call("GET", "/jobs")["total"]
    # The form waits behind its button, so services and sources stay in view.
    assert not visible(browser, "#job-form"), "the New job form shows before its button is clicked"
    browser.find_element(By.ID, "new-job-toggle").click()
    wait_page(browser, lambda d: visible(d, "#job-form"), "the New job button to reveal the form")
    browser.find_element(By.ID, "job-name").send_keys(new_name)
    browser.find_element(By.CSS_SELECTOR, f'#job-source option[value="{src["id"]}"]').click()
    paste_yaml(browser, bad_yaml)
    browser.find_element(By.ID, "job-submit").click()
    problem = wait_page(browser, lambda d: [e for e in d.find_elements(
        By.CSS_SELECTOR, f'#job-errors li[data-line="{bad_line}"]') if e.is_displayed()],
        f"the form's error list to show line {bad_line}")[0]
    assert f"line {bad_line}" in problem.text, problem.text
    assert expected_errors[0]["message"] in problem.text, (problem.text, expected_errors)
    assert "KAFKA.OUTPUT.MODE" in problem.text, problem.text
    gutter = browser.find_element(By.CSS_SELECTOR,
                                  f'#job-config-gutter span[data-line="{bad_line}"]')
    assert "bad" in gutter.get_attribute("class").split(), gutter.get_attribute("outerHTML")
    marked = browser.find_elements(By.CSS_SELECTOR, "#job-config-gutter span.bad")
    assert {int(e.get_attribute("data-line")) for e in marked} == \
        {e["line"] for e in details if e["line"]}, [e.text for e in marked]
    assert "not created" in browser.find_element(By.ID, "job-form-message").text
    assert server.call("GET", "/jobs")["total"] == jobs_before, "a bad YAML created a job"

    path = artifacts_dir() / "status-page-form.png"
    assert browser.save_screenshot(str(path)), "the screenshot was not written"
    print(f"\nstatus page screenshot: {path}")

    # Fixed, the same form creates the job; its row appears, stopped.
    good_yaml = bad_yaml.replace("MODE: SMASH", "MODE: INSERT")
    paste_yaml(browser, good_yaml)
    browser.find_element(By.ID, "job-submit").click()
    wait_page(browser, lambda d: "Created job" in d.find_element(By.ID, "job-form-message").text,
              "the form to say the job was created")
    assert not browser.find_elements(By.CSS_SELECTOR, "#job-errors li"), "old errors still shown"
    created = [j for j in server.call("GET", "/jobs?page_size=100")["items"]
               if j["name"] == new_name]
    assert len(created) == 1 and created[0]["mode"] == "professional", created
    row = wait_page(browser, lambda d: page_job(d, created[0]["id"]), "the new job's row")
    assert row["name"] == new_name and row["state"] == "stopped", row
    assert row["source"] == src["name"], row
    # Topic -> table read from the professional job's effective YAML.
    assert row["flow"] == f"{topic} \u2192 public.{table}", row

    # Stop: the badge turns to stopped, and the API agrees.
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="stop"]').click()
    stopped = wait_page(browser, lambda d: (lambda r: r if r and r["state"] == "stopped"
                                            and r["action_message"] == "" else None)(
        page_job(d, jid)), "the badge to show stopped after Stop, with no error beside it")
    badge = browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-field="state"]')
    assert "idle" in badge.get_attribute("class").split(), badge.get_attribute("class")
    st = job_status(server, jid)
    assert st["state"] == "stopped" and st["desired_state"] == "stopped", st
    assert stopped["stop_disabled"] and not stopped["start_disabled"], stopped
    assert browser.execute_script("return window.__e2eMarker") == marker, \
        "the page was reloaded"
    assert script_errors(browser) == []


def _token_file(tmp_path, name, value):
    f = tmp_path / name
    f.write_text(value + "\n")
    f.chmod(0o600)
    return f


def test_status_page_with_token(make_server, pg, kafka, browser, tmp_path):
    token = "web-" + uuid.uuid4().hex
    read_token = "web-read-" + uuid.uuid4().hex
    srv = make_server(args=["--token-file", str(_token_file(tmp_path, "token", token)),
                            "--read-token-file", str(_token_file(tmp_path, "read", read_token))],
                      api_token=token)
    topic = kafka.create_topic(unique("webtok"), partitions=1)
    table = pg.create_table(unique("t_webtok"), TABLE5)
    svc = create_service(srv, pg)
    src = create_source(srv, svc["id"], kafka, topic)
    job = create_job(srv, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                     name=unique("web_secret_job")))
    jid = job["id"]

    # The shell is open, the data is not: the page asks for the token.
    browser.get(srv.base + "/")
    wait_page(browser, lambda d: visible(d, "#auth") and visible(d, "#token-input"),
              "the page to ask for the token")
    assert "401" in browser.find_element(By.ID, "auth-message").text or \
        "token" in browser.find_element(By.ID, "auth-message").text.lower()
    assert not visible(browser, "#app")
    assert job["name"] not in browser.page_source, "GET / shows jobs without the token"
    assert token not in browser.page_source

    # A wrong token is refused, and the page says so.
    browser.find_element(By.ID, "token-input").send_keys("not-the-token-" + uuid.uuid4().hex)
    browser.find_element(By.ID, "token-save").click()
    wait_page(browser, lambda d: visible(d, "#auth") and "refused" in d.find_element(
        By.ID, "auth-message").text, "the page to refuse a wrong token")

    browser.find_element(By.ID, "token-input").send_keys(token)
    browser.find_element(By.ID, "token-save").click()
    row = wait_page(browser, lambda d: page_job(d, jid), "the jobs to show after the token")
    assert row["name"] == job["name"] and row["state"] == "stopped", row
    assert not visible(browser, "#auth")
    assert token not in browser.page_source, "the token is in the page"

    # The full token may act: Start from the page runs the job.
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="start"]').click()
    wait_state(srv, jid, "running")
    wait_page(browser, lambda d: (lambda r: r and r["state"] == "running")(page_job(d, jid)),
              "the badge to show running after Start")

    # The read-only token: the page shows the jobs, a click shows the 403.
    browser.find_element(By.ID, "token-forget").click()
    wait_page(browser, lambda d: visible(d, "#auth"), "the page to ask again after Forget")
    browser.find_element(By.ID, "token-input").send_keys(read_token)
    browser.find_element(By.ID, "token-save").click()
    row = wait_page(browser, lambda d: page_job(d, jid), "the jobs to show with the read token")
    forbidden = requests.post(srv.url(f"/jobs/{jid}/stop"), timeout=15,
                              headers={"Authorization": f"Bearer {read_token}"})
    assert forbidden.status_code == 403, forbidden.text
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="stop"]').click()
    msg = wait_page(browser, lambda d: (lambda m: m if m and "403" in m else None)(
        (page_job(d, jid) or {}).get("action_message")), "the row to show the 403")
    assert forbidden.json()["error"]["message"] in msg, msg
    st = job_status(srv, jid)
    assert st["desired_state"] == "running", f"the read token stopped the job: {st}"
    assert script_errors(browser) == []

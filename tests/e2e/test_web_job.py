"""The status page's trends and job view (web/ui/app.js) in headless Chromium
against a real controller, PostgreSQL and Kafka: the 15-minute sparklines of
rows/s and lag fill in as the page polls, each row says topic -> table and
how long ago the last batch was, a stopped or failed job shows no lag (the API still
holds the worker's last report), and a click on a job's name opens its view:
the effective YAML, partitions with their stored offsets, the rejected row of
a malformed message, an offsets reset while stopped, and delete behind a
confirmation.  Names and payloads holding markup stay text.

The screenshot with a trend goes to $E2E_ARTIFACTS/status-page.png (default:
<build dir>/test-artifacts/); doc/status-page.png is a copy of one.
"""
import uuid

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from helpers import (COLUMNS5, TABLE5, create_job, create_service, create_source,
                     delimited_messages, job_status, start_job, unique, wait_for, wait_state,
                     wizard_job)
from test_web import (artifacts_dir, browser, page_job, script_errors, shown_int,  # noqa: F401
                      visible, wait_page)

MARKUP = '<img src=x onerror="window.__xss=1">'
BAD_PAYLOAD = 'kbad|<img src=x onerror="window.__xss=2">|1.5|a|b'  # column_2 is a bigint

# The trend of a row, read in one script call: how many samples each
# sparkline draws and its polyline's points.
READ_TREND = """
const tr = document.querySelector('tr[data-job-id="' + arguments[0] + '"]');
if (!tr) return null;
const out = {};
for (const f of ['rps_trend', 'lag_trend']) {
  const s = tr.querySelector('svg[data-field="' + f + '"]');
  out[f] = {n: Number(s.dataset.points), max: Number(s.dataset.max),
            points: s.querySelector('polyline').getAttribute('points'),
            shown: s.getBoundingClientRect().width > 0};
}
return out;
"""

READ_TABLE = """
return Array.from(document.querySelectorAll(arguments[0] + ' tr')).map(tr => {
  const o = {};
  for (const e of tr.querySelectorAll('[data-field]')) o[e.dataset.field] = e.textContent;
  return o;
});
"""


def trend(driver, job_id):
    return driver.execute_script(READ_TREND, job_id)


def table_rows(driver, css):
    return driver.execute_script(READ_TABLE, css)


def xss_fired(driver):
    return driver.execute_script("return window.__xss === undefined ? null : window.__xss")


def test_trend_job_view_reset_delete(server, pg, kafka, browser):
    topic = kafka.create_topic(unique("webjob"), partitions=2)
    table = pg.create_table(unique("t_webjob"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                        name=unique("web_trend"), error_limit=100))
    jid = job["id"]
    kafka.produce(topic, delimited_messages(0, 3000), partitions=2)
    kafka.produce(topic, [BAD_PAYLOAD], partitions=1)  # partition 0
    start_job(server, jid)
    wait_state(server, jid, "running")

    browser.get(server.base + "/")
    row = wait_page(browser, lambda d: (lambda r: r if r and r["state"] == "running" else None)(
        page_job(d, jid)), f"job {jid}'s row to show running")
    # Topic -> table on the row.
    assert row["flow"] == f"{topic} \u2192 public.{table}", row["flow"]

    # More messages while the page polls: the trend gets points, one per poll
    # (bursts larger than a few seconds' work, so the screenshot's lag moves).
    for i in range(3):
        kafka.produce(topic, delimited_messages(3000 + i * 3000, 6000 + i * 3000), partitions=2)
        n0 = trend(browser, jid)["rps_trend"]["n"]
        wait_page(browser, lambda d: trend(d, jid)["rps_trend"]["n"] > n0,
                  "the rows/s sparkline to gain a sample")
    wait_page(browser, lambda d: (lambda r: r if r and r["lag"] == "0" else None)(
        page_job(d, jid)), "the lag to show 0 once the topic is drained")
    tr = wait_page(browser, lambda d: (lambda t: t if t["lag_trend"]["n"] >= 3 else None)(
        trend(d, jid)), "the lag sparkline to have 3 samples")
    rps = tr["rps_trend"]
    assert rps["shown"] and tr["lag_trend"]["shown"], tr
    assert rps["n"] >= 4 and len(rps["points"].split()) == rps["n"], rps
    assert rps["max"] > 0, f"rows/s never above 0 while 12,000 rows were written: {rps}"
    xs = [float(p.split(",")[0]) for p in rps["points"].split()]
    assert xs == sorted(xs) and xs[-1] > 80, f"the newest sample is not at the right: {xs}"
    row = page_job(browser, jid)
    assert row["last_batch"].endswith(" ago"), row["last_batch"]
    assert row["lag_age"].endswith(" ago"), row["lag_age"]
    st = job_status(server, jid)
    assert st["last_batch_at"] is not None and st["rows_rejected"] == 1, st

    # Everything committed (the lag above is the read position), so the
    # view's offsets and the API's are the same figures.
    wait_for(lambda: all(p["stored_offset"] == p["high_watermark"] for p in server.call(
        "GET", f"/jobs/{jid}/offsets")["partitions"]), 60, 0.5, "the offsets to be committed")

    # The job view.
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="open"]').click()
    wait_page(browser, lambda d: visible(d, "#job-view"), "the job view to open")
    assert job["name"] in browser.find_element(By.ID, "job-view-title").text
    yaml = wait_page(browser, lambda d: (lambda t: t if "TOPIC" in t else None)(
        d.find_element(By.ID, "job-view-yaml").text), "the job's YAML")
    assert yaml == server.request("GET", f"/jobs/{jid}/config").text.rstrip("\n"), yaml
    assert f"TOPIC: {topic}" in yaml and f"TABLE: {table}" in yaml, yaml
    assert pg.password not in yaml and "'****'" in yaml, "the YAML shows the password"
    # Tasks with the partitions they own.
    tasks = wait_page(browser, lambda d: (lambda t: t if t and t[0].get("partitions") == "0, 1"
                                          else None)(table_rows(d, "#job-tasks-body")),
                      "the task row to list partitions 0, 1")
    assert tasks[0]["state"] == "running", tasks
    # Partitions with their stored offsets, as the API reads them.
    offsets = wait_page(browser, lambda d: (lambda t: t if len(t) == 2 else None)(
        table_rows(d, "#job-offsets-body")), "the offsets of both partitions")
    api_off = server.call("GET", f"/jobs/{jid}/offsets")
    want = {str(p["partition"]): p for p in api_off["partitions"]}
    for o in offsets:
        p = want[o["partition"]]
        assert shown_int(o["stored_offset"]) == p["stored_offset"] > 0, (o, p)
        assert shown_int(o["high_watermark"]) == p["high_watermark"], (o, p)
    # The malformed message's rejected row, its payload as text.
    rejects = wait_page(browser, lambda d: (lambda t: t if t else None)(
        table_rows(d, "#job-rejects-body")), "the rejected row")
    api_err = server.call("GET", f"/jobs/{jid}/errors")["items"]
    assert len(rejects) == len(api_err) == 1, (rejects, api_err)
    assert rejects[0]["partition"] == "0" and rejects[0]["partition"] == str(api_err[0]["partition"])
    assert rejects[0]["offset"] == str(api_err[0]["offset"]), (rejects, api_err)
    assert rejects[0]["error"] == api_err[0]["error"] and rejects[0]["error"], rejects
    assert rejects[0]["payload"] == BAD_PAYLOAD, rejects
    assert xss_fired(browser) is None, "a payload's markup ran"
    assert not browser.find_elements(By.CSS_SELECTOR, "#job-view img, #jobs-body img")

    path = artifacts_dir() / "status-page.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(path)), "the screenshot was not written"
    print(f"\nstatus page screenshot: {path}")

    # Reset and delete wait for the job to stop.
    assert not browser.find_element(By.ID, "job-reset").is_enabled()
    assert not browser.find_element(By.ID, "job-delete").is_enabled()
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="stop"]').click()
    wait_state(server, jid, "stopped")
    # Stopped: the API keeps the worker's last lag report, the page shows no
    # lag (nor its age) for a job that does not run.
    stopped = wait_page(browser, lambda d: (lambda r: r if r and r["state"] == "stopped" else None)(
        page_job(d, jid)), "the row to show stopped")
    assert job_status(server, jid)["lag"]["total"] is not None, "the API dropped the last report"
    assert stopped["lag"] == "\u2014" and stopped["lag_age"] == "", stopped
    assert "before the job stopped" in stopped["lag_updated_at"], stopped

    # Reset to earliest from the view: the stored offsets go back to the low
    # watermarks, as the API reads them.
    wait_page(browser, lambda d: d.find_element(By.ID, "job-reset").is_enabled(),
              "Reset offsets to be enabled once stopped")
    Select(browser.find_element(By.ID, "job-reset-to")).select_by_value("earliest")
    browser.find_element(By.ID, "job-reset").click()
    msg = wait_page(browser, lambda d: (lambda t: t if t.startswith("Offsets") else None)(
        d.find_element(By.ID, "job-view-message").text), "the reset's answer")
    assert msg.startswith("Offsets reset to earliest"), msg
    after = server.call("GET", f"/jobs/{jid}/offsets")["partitions"]
    assert [(p["partition"], p["stored_offset"]) for p in after] == \
        [(p["partition"], p["low_watermark"]) for p in after], after
    assert all(want[str(p["partition"])]["stored_offset"] > p["stored_offset"] for p in after)
    wait_page(browser, lambda d: (lambda t: t if t and all(
        shown_int(o["stored_offset"]) == 0 for o in t) else None)(
        table_rows(d, "#job-offsets-body")), "the view's offsets to show the reset")

    # Delete asks first; Cancel keeps the job.
    browser.find_element(By.ID, "job-delete").click()
    wait_page(browser, lambda d: visible(d, "#job-delete-confirm"), "the delete confirmation")
    assert job["name"] in browser.find_element(By.ID, "job-delete-question").text
    browser.find_element(By.ID, "job-delete-no").click()
    assert not visible(browser, "#job-delete-confirm")
    assert server.request("GET", f"/jobs/{jid}").status_code == 200, "Cancel deleted the job"
    browser.find_element(By.ID, "job-delete").click()
    wait_page(browser, lambda d: visible(d, "#job-delete-confirm"), "the delete confirmation")
    browser.find_element(By.ID, "job-delete-yes").click()
    wait_page(browser, lambda d: page_job(d, jid) is None and not visible(d, "#job-view"),
              "the row and the view to go after delete")
    assert server.request("GET", f"/jobs/{jid}").status_code == 404
    assert script_errors(browser) == []


def test_new_job_button_and_markup_in_names(server, pg, kafka, browser):
    topic = kafka.create_topic(unique("webxss"), partitions=1)
    table = pg.create_table(unique("t_webxss"), TABLE5)
    svc = create_service(server, pg, name=unique("svc") + MARKUP)
    src = create_source(server, svc["id"], kafka, topic, name=unique("src") + MARKUP)
    name = unique("job") + MARKUP
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5], name=name))
    jid = job["id"]

    browser.get(server.base + "/")
    row = wait_page(browser, lambda d: page_job(d, jid), "the job's row")
    # Markup in names is shown as text and never runs.
    assert row["name"] == name and row["source"] == src["name"], row
    assert xss_fired(browser) is None and not browser.find_elements(By.TAG_NAME, "img")
    # A job that never ran: no lag, no batch.
    assert row["lag"] == "\u2014" and row["lag_age"] == "", row
    assert row["last_batch"] == "none yet", row
    assert row["flow"] == f"{topic} \u2192 public.{table}", row

    # The form waits behind its button; services and sources stay in view.
    assert not visible(browser, "#job-form")
    in_view = "return document.getElementById(arguments[0]).getBoundingClientRect().top " \
              "< window.innerHeight"
    assert browser.execute_script(in_view, "sources"), "the sources are below the fold"
    browser.find_element(By.ID, "new-job-toggle").click()
    wait_page(browser, lambda d: visible(d, "#job-form") and visible(d, "#job-config"),
              "the New job button to reveal the form")
    assert browser.switch_to.active_element.get_attribute("id") == "job-name"
    assert browser.find_element(By.ID, "new-job-toggle").get_attribute("aria-expanded") == "true"
    opts = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#job-source option")]
    assert any(src["name"] in o for o in opts), opts
    browser.find_element(By.ID, "new-job-toggle").click()
    assert not visible(browser, "#job-form")

    # The job view of the marked-up name: title as text.
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="open"]').click()
    wait_page(browser, lambda d: visible(d, "#job-view"), "the job view to open")
    assert browser.find_element(By.ID, "job-view-title").text == f"Job {name} (#{jid})"
    wait_page(browser, lambda d: "No rejected rows" in d.find_element(By.ID, "job-rejects-note").text,
              "the view to say there are no rejected rows")
    assert xss_fired(browser) is None and not browser.find_elements(By.TAG_NAME, "img")
    # The open view is in the address: a reload opens it again; Escape closes it.
    assert browser.execute_script("return location.hash") == f"#job={jid}"
    browser.refresh()
    wait_page(browser, lambda d: visible(d, "#job-view") and d.find_element(
        By.ID, "job-view-title").text == f"Job {name} (#{jid})", "the reload to open the view again")
    browser.find_element(By.ID, "job-view-close").send_keys(Keys.ESCAPE)
    assert not visible(browser, "#job-view")
    assert browser.execute_script("return location.hash") == ""
    # Without scripts the summary is escaped by the server.
    html = requests.get(server.base + "/", timeout=15).text
    assert name.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in html
    assert MARKUP not in html, "the no-script summary holds a name's markup unescaped"
    assert script_errors(browser) == []


def test_job_view_with_tokens(make_server, pg, kafka, browser, tmp_path):
    """The view's calls carry the token: the YAML loads with the read-only
    token, and its Reset and Delete show the server's 403 and change nothing."""
    from test_web import _token_file

    token = "webjob-" + uuid.uuid4().hex
    read_token = "webjob-read-" + uuid.uuid4().hex
    srv = make_server(args=["--token-file", str(_token_file(tmp_path, "token", token)),
                            "--read-token-file", str(_token_file(tmp_path, "read", read_token))],
                      api_token=token)
    topic = kafka.create_topic(unique("webjobtok"), partitions=1)
    table = pg.create_table(unique("t_webjobtok"), TABLE5)
    svc = create_service(srv, pg)
    src = create_source(srv, svc["id"], kafka, topic)
    job = create_job(srv, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                     name=unique("web_tok_view")))
    jid = job["id"]

    browser.get(srv.base + "/")
    wait_page(browser, lambda d: visible(d, "#token-input"), "the page to ask for the token")
    browser.find_element(By.ID, "token-input").send_keys(read_token)
    browser.find_element(By.ID, "token-save").click()
    wait_page(browser, lambda d: page_job(d, jid), "the jobs to show with the read token")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{jid}"] [data-action="open"]').click()
    yaml = wait_page(browser, lambda d: (lambda t: t if "TOPIC" in t else None)(
        d.find_element(By.ID, "job-view-yaml").text), "the job's YAML with the read token")
    assert f"TOPIC: {topic}" in yaml and pg.password not in yaml, yaml

    wait_page(browser, lambda d: d.find_element(By.ID, "job-reset").is_enabled(),
              "Reset offsets to be enabled for a stopped job")
    browser.find_element(By.ID, "job-reset").click()
    msg = wait_page(browser, lambda d: (lambda t: t if "403" in t else None)(
        d.find_element(By.ID, "job-view-message").text), "the reset's 403")
    assert msg.startswith("Offsets not reset"), msg
    browser.find_element(By.ID, "job-delete").click()
    wait_page(browser, lambda d: visible(d, "#job-delete-confirm"), "the delete confirmation")
    browser.find_element(By.ID, "job-delete-yes").click()
    msg = wait_page(browser, lambda d: (lambda t: t if t.startswith("Not deleted") else None)(
        d.find_element(By.ID, "job-view-message").text), "the delete's 403")
    assert "403" in msg, msg
    assert srv.call("GET", f"/jobs/{jid}")["name"] == job["name"], "the read token deleted the job"
    assert page_job(browser, jid) is not None
    assert token not in browser.page_source and read_token not in browser.page_source
    assert script_errors(browser) == []


def test_failed_job_shows_no_stale_lag(server, pg, kafka, browser):
    """A job failed by its ERROR_LIMIT keeps its worker's last lag report in
    the API; the page shows no lag for it, and the reason."""
    topic = kafka.create_topic(unique("webfail"), partitions=1)
    table = pg.create_table(unique("t_webfail"), TABLE5)
    svc = create_service(server, pg)
    src = create_source(server, svc["id"], kafka, topic)
    job = create_job(server, wizard_job(src["id"], pg, table, [c for c, _ in COLUMNS5],
                                        name=unique("web_fail"), error_limit=0))
    jid = job["id"]
    kafka.produce(topic, delimited_messages(0, 1000))
    start_job(server, jid)
    wait_state(server, jid, "running", pred=lambda st: st["lag"]["total"] is not None)

    browser.get(server.base + "/")
    wait_page(browser, lambda d: (lambda r: r if r and r["lag"] == "0" else None)(
        page_job(d, jid)), "the running job's lag")
    kafka.produce(topic, [BAD_PAYLOAD])  # ERROR_LIMIT 0: the job fails on it
    st = wait_state(server, jid, "failed")
    assert st["lag"]["total"] is not None and st["lag"]["updated_at"] is not None, st
    row = wait_page(browser, lambda d: (lambda r: r if r and r["state"] == "failed" else None)(
        page_job(d, jid)), "the row to show failed")
    assert row["lag"] == "\u2014" and row["lag_age"] == "", row
    assert "before the job stopped" in row["lag_updated_at"], row
    assert row["rows_per_second"] == "0", row
    assert st["last_error"] and row["last_error"] == st["last_error"], (row, st)
    assert script_errors(browser) == []

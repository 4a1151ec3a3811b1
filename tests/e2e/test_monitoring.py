"""deploy/monitoring/: the Prometheus alert rules pass `promtool check
rules` and their cases (`promtool test rules`: each alert fires when it
should and not before), the Grafana dashboard is a dashboard with the
panels the README promises, and every metric and label the rules, the
dashboard and the manual's PromQL examples use exists in a live /metrics of
a running job."""
import json
import re
import subprocess

from helpers import REPO
from test_metrics import parse_prometheus, promtool, running_job_metrics

MON = REPO / "deploy" / "monitoring"
RULES = MON / "streamserver-alerts.yml"
RULE_CASES = MON / "streamserver-alerts.test.yml"
DASHBOARD = MON / "streamserver-dashboard.json"
# Labels Prometheus adds to every series it scrapes.
TARGET_LABELS = {"instance", "job"}


def run_promtool(*args):
    p = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120,
                       cwd=MON)
    assert p.returncode == 0, f"promtool {' '.join(args)} ({p.returncode}):\n{p.stdout}{p.stderr}"
    return p.stdout


def test_alert_rules_check():
    out = run_promtool("check", "rules", RULES.name)
    assert "SUCCESS: 5 rules found" in out, out


def test_alert_rules_fire_when_they_should():
    out = run_promtool("test", "rules", RULE_CASES.name)
    assert "SUCCESS" in out, out
    # every alert of the file has a case that expects it to fire
    import yaml
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    fired = {t["alertname"] for case in yaml.safe_load(RULE_CASES.read_text())["tests"]
             for t in case["alert_rule_test"] if t.get("exp_alerts")}
    assert fired == alerts, f"alerts without a firing case: {sorted(alerts - fired)}"


def dashboard_panels():
    dash = json.loads(DASHBOARD.read_text())
    return dash, [p for p in dash["panels"] if p["type"] != "row"]


def test_dashboard_shape():
    dash, panels = dashboard_panels()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    assert dash["uid"] == "streamserver" and dash["schemaVersion"] >= 36, dash["schemaVersion"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and \
        variables["datasource"]["query"] == "prometheus"
    titles = {p["title"] for p in panels}
    for want in ("Rows written per second", "Lag (messages)", "Time since the last batch",
                 "Rows rejected (per 5 minutes)", "Worker memory (resident) per job",
                 "Worker CPU per job"):
        assert want in titles, f"no panel {want!r}: {sorted(titles)}"
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"] and all(t["expr"] and t["datasource"]["uid"] == "${datasource}"
                                    for t in p["targets"]), p["title"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
    # no two panels overlap
    cells = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def queries():
    """(where, PromQL) of the rules, the dashboard and the manual."""
    import yaml
    out = []
    for g in yaml.safe_load(RULES.read_text())["groups"]:
        for r in g["rules"]:
            out.append((f"rule {r['alert']}", r["expr"]))
    dash, panels = dashboard_panels()
    for p in panels:
        for t in p["targets"]:
            out.append((f"panel {p['title']!r}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"variable {v['name']}", v["definition"]))
    for doc in [REPO / "README.md", *sorted((REPO / "doc").rglob("*.md"))]:
        for block in re.findall(r"```promql\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                if line.strip() and not line.startswith("#"):
                    out.append((doc.name, line))
    return out


def used_names(expr):
    """Metric names and label names a PromQL expression uses."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no label values
    metrics = set(re.findall(r"\b((?:streamserver|process)_[a-z_]+)\b", text))
    labels = set()
    for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", text):
        labels |= {l.strip() for l in group.split(",") if l.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([a-z_]+)\s*[=!]~?", matchers))
    labels |= set(re.findall(r"label_values\([^,]*,\s*([a-z_]+)\)", text))
    labels -= {"__rate_interval"}
    return metrics, labels


def test_every_name_used_exists_in_live_metrics(server, pg, kafka):
    _, text = running_job_metrics(server, pg, kafka, "mon")
    fams = parse_prometheus(text)
    series_names = {}
    labels = set(TARGET_LABELS)
    for fam, f in fams.items():
        for name, lb, _ in f["samples"]:
            series_names[name] = fam
            labels |= set(lb)
    used = queries()
    assert len([w for w, _ in used if w.startswith("rule")]) == 5
    assert len([w for w, _ in used if w.startswith("panel")]) >= 6
    for where, expr in used:
        metrics, lbls = used_names(expr)
        assert metrics, f"{where}: no metric in {expr!r}"
        for m in metrics:
            assert m in series_names, \
                f"{where}: {m} is not in a live /metrics with a running job: {expr!r}"
        unknown = sorted(lbls - labels)
        assert not unknown, f"{where}: labels {unknown} are in no series of /metrics: {expr!r}"

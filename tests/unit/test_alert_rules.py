"""The operator's alert rules and Grafana dashboard (deploy/), checked by the real promtool.

`promtool check rules` validates the rules file; `promtool test rules` runs
petcam-alerts.test.yml, where every alert has a case that fires and one that
must not. The dashboard's queries are checked by the same PromQL parser (as
recording rules in a scratch file). That the metric names exist in a real
/metrics page is tests/integration/test_metrics.py's job.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.alerting import (
    DASHBOARD,
    PROMTOOL,
    RULE_TESTS,
    RULES,
    dashboard,
    dashboard_exprs,
    rules,
)

ALERTS = {"PetcamSiteDown", "PetcamWorkerDown", "PetcamCameraOffline", "PetcamDiskNearlyFull",
          "PetcamDiskTooFullToRecord", "PetcamRecordingFailed", "PetcamViewersDroppingFrames",
          "PetcamDetectorSilent"}


@pytest.fixture(scope="module", autouse=True)
def _promtool():
    if not Path(PROMTOOL).is_file():
        pytest.fail(f"{PROMTOOL} missing: apt-get install prometheus (make test does)")


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_the_rules_file_is_valid_and_has_every_alert():
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in out.stdout
    assert {rule["alert"] for rule in rules()} == ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_alert_fires_and_stays_quiet_in_the_promtool_unit_tests():
    out = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    fires, quiet = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fires == ALERTS, ALERTS - fires
    assert quiet == ALERTS, ALERTS - quiet


def test_a_broken_rule_fails_the_unit_tests(tmp_path):
    """The unit tests can fail: a worker-down rule that looks for 1 instead of 0."""
    for path in (RULES, RULE_TESTS):
        shutil.copy(path, tmp_path / path.name)
    broken = tmp_path / RULES.name
    text = broken.read_text()
    assert "expr: petcam_worker_up == 0" in text
    broken.write_text(text.replace("expr: petcam_worker_up == 0", "expr: petcam_worker_up == 1"))
    assert promtool("check", "rules", str(broken)).returncode == 0  # still valid PromQL
    out = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert out.returncode != 0 and "PetcamWorkerDown" in out.stdout + out.stderr


def test_a_rules_file_with_bad_promql_is_refused(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(RULES.read_text().replace("petcam_camera_live == 0",
                                             "petcam_camera_live == == 0"))
    out = promtool("check", "rules", str(bad))
    assert out.returncode != 0 and "parse error" in out.stdout + out.stderr


def test_the_dashboard_is_valid_json_with_parseable_queries(tmp_path):
    board = dashboard()
    assert board["uid"] == "petcam-overview" and board["title"]
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    graphs = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert len(graphs) >= 20
    for panel in graphs:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
    # Grafana's own $camera variable and the label_values() helper are not PromQL:
    # substitute them, then let promtool's parser read every query as a recording rule.
    exprs = [e.replace("$camera", ".*") for e in dashboard_exprs(board)
             if not e.startswith("label_values(")]
    check = tmp_path / "dashboard-queries.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"petcam:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    out = promtool("check", "rules", str(check))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout, DASHBOARD

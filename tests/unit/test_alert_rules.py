"""deploy/prometheus (scrape config, alert rules) and deploy/grafana (the
dashboard): checked by promtool where it is installed (`.ci/run` installs it:
the config and rules are valid, and each alert fires on the series of
alerts.test.yml and only there), and by reading them here in every case:
every metric they query is one the services export, every alert says how
urgent it is and what to do."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from services.shared import metrics
from tests.conftest import REQUIRE_SERVICES

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "vtc.json"
# What the issue asks alerts for, by the alert that covers it.
REQUIRED_ALERTS = {"VtcJobsFailing": "jobs failing", "VtcJobQueueGrowing": "queue growing",
                   "VtcOutboxBacklog": "outbox backlog", "VtcNoWorkerConsuming": "no worker consuming",
                   "VtcErrorRate": "error rate"}


def exported_series() -> set[str]:
    """Every series name the services' metrics produce (counters' _total, histograms' parts)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind, name = value._type, value._name  # noqa: SLF001 - prometheus_client keeps them there
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(kind, [""])
            names |= {name + suffix for suffix in suffixes}
    return names


def queried(expr: str) -> set[str]:
    return set(re.findall(r"\bvtc_[a-z0-9_]+", expr))


def alert_rules() -> list[dict[str, Any]]:
    config = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in config["groups"] for rule in group["rules"]]


def test_every_alert_queries_exported_metrics_and_says_how_urgent_and_what_to_do() -> None:
    exported = exported_series()
    rules = alert_rules()
    assert REQUIRED_ALERTS.keys() <= {rule["alert"] for rule in rules}
    for rule in rules:
        unknown = queried(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} queries metrics nobody exports: {unknown}"
        assert rule["labels"]["severity"] in ("page", "warn"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_the_dashboard_queries_exported_metrics_from_the_provisioned_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load((REPO / "deploy" / "grafana" / "provisioning" / "datasources" /
                                 "prometheus.yml").read_text())["datasources"][0]
    exported = exported_series()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    used: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            names = queried(target["expr"])
            assert names and not names - exported, f"{panel['title']}: {names - exported}"
            used |= names
    # Every metric the services export is on the dashboard.
    bases = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    shown = {name for name in exported if name in used or re.sub(r"_(bucket|count|sum)$", "", name) in bases}
    assert shown == exported, f"not on the dashboard: {sorted(exported - shown)}"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (.ci/run installs it from Debian's prometheus package)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("args", [
    ["check", "config", "prometheus.yml"],  # the scrape config and the rule files it names
    ["test", "rules", "alerts.test.yml"],  # each alert fires on its cases, stays quiet on the others
], ids=["check-config", "test-rules"])
def test_promtool_accepts_the_config_and_the_alerts_fire_when_they_should(args: list[str]) -> None:
    done = subprocess.run([promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_local_prometheus_reads_the_targets_make_run_and_run_mesh_write(tmp_path: Path) -> None:
    from services.shared.metrics import write_scrape_targets

    config = tmp_path / "deploy" / "prometheus"
    config.mkdir(parents=True)
    for name in ("local.yml", "alerts.yml"):
        (config / name).write_text((PROMETHEUS / name).read_text())
    write_scrape_targets(tmp_path / "var" / "metrics-targets.json", {"all-in-one": "127.0.0.1:9464"})
    write_scrape_targets(tmp_path / "var" / "mesh" / "metrics-targets.json",
                         {"auth": "127.0.0.1:9101", "metadata-1": "127.0.0.1:9102"})
    done = subprocess.run([promtool(), "check", "config", "deploy/prometheus/local.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr  # both target files found and valid
    groups = json.loads((tmp_path / "var" / "mesh" / "metrics-targets.json").read_text())
    assert groups[1] == {"targets": ["127.0.0.1:9102"], "labels": {"job": "vtc-metadata", "process": "metadata-1"}}

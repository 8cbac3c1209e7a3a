"""The example Prometheus alert rules (ops/alerts.yml) are valid, fire on the series that should
raise them and stay quiet otherwise (ops/alerts.test.yml), as promtool judges them."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.slackbot import Bot

OPS = Path(__file__).resolve().parent.parent / "ops"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian's `prometheus` package has it; .ci/run installs it)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=OPS, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_the_rules_pass_promtools_check() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


@needs_promtool
def test_each_alert_fires_when_it_should_and_only_then() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    """Read without promtool: a new rule without both kinds of test case fails here."""
    rules = yaml.safe_load((OPS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load((OPS / "alerts.test.yml").read_text())
    checks = [check for test in cases["tests"] for check in test["alert_rule_test"]]
    fired = {check["alertname"] for check in checks if check["exp_alerts"]}
    quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert alerts == {
        "IncidentBotOutboxStuck",
        "IncidentBotNoSchedulerLeader",
        "IncidentBotSlowAcks",
        "IncidentBotNotReady",
        "IncidentBotDown",
    }
    assert fired == alerts
    assert quiet == alerts


def test_the_rules_name_series_the_bot_exposes(slackbot: Bot) -> None:
    """A renamed metric would leave its alert silent forever: every series the rules read is in
    a real scrape (after one command, so the ack histogram has buckets)."""
    assert slackbot.command("help")[0] == 200
    with urllib.request.urlopen(f"{slackbot.base_url}/metrics", timeout=10) as response:
        scrape = response.read().decode()
    exposed = {
        sample.name
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    rules = yaml.safe_load((OPS / "alerts.yml").read_text())
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    named = set(re.findall(r"\bincident_bot_\w+", exprs))
    assert named == {
        "incident_bot_outbox_oldest_waiting_seconds",
        "incident_bot_scheduler_leader",
        "incident_bot_ack_seconds_bucket",
        "incident_bot_ready",
    }
    assert named <= exposed

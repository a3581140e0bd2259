"""The deployment's alert rules are stack/alert_rules.py's, and Prometheus' own checker accepts
them (promtool, from Debian's prometheus package, which the stack installs)."""

from __future__ import annotations

import shutil
import subprocess

from stack.alert_rules import DOCKER_RULES, RULES, rules_document, rules_text


def test_the_deployment_s_rule_file_is_written_from_the_rules() -> None:
    assert DOCKER_RULES.read_text() == rules_text(), "run `python -m stack.alert_rules`"


def test_without_holds_every_alert_fires_at_once_and_nothing_else_changes() -> None:
    held, at_once = rules_document(), rules_document(holds=False)
    assert [r["for"] for r in at_once["groups"][0]["rules"]] == ["0s"] * len(RULES)
    for a, b in zip(held["groups"][0]["rules"], at_once["groups"][0]["rules"], strict=True):
        assert {**a, "for": "0s"} == b


def test_promtool_accepts_the_rules() -> None:
    """promtool comes with Debian's prometheus package, which `make lint` installs."""
    assert shutil.which("promtool"), "promtool is missing: `python -m stack.debian_packages lint`"
    checked = subprocess.run(
        ["promtool", "check", "rules", str(DOCKER_RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

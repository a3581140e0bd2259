"""The README's configuration table lists every setting, so it cannot drift from the code."""

import re
from pathlib import Path

from zerocarbon.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `ZC_([A-Z_]+)` \|", README, flags=re.M))
    assert {name.upper() for name in Settings.model_fields} <= documented


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci and "`make test`" in README

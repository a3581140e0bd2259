"""The README and the configuration reference cannot drift from the code or the repository."""

import re
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()

# Markdown links `[text](target)` and paths in code spans under docs/ or bench/.
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN_PATH = re.compile(r"`((?:docs|bench)/[^`\s]+)`")


def documented_settings(markdown: str) -> set[str]:
    """Names (without `ZC_`) in the first column of a markdown settings table."""
    return set(re.findall(r"^\| `ZC_([A-Z_]+)` \|", markdown, flags=re.M))


def local_paths_named(markdown: str) -> set[str]:
    """Repository paths the text links to or names under docs/ and bench/ (anchors dropped)."""
    targets = set(LINK_TARGET.findall(markdown)) | set(CODE_SPAN_PATH.findall(markdown))
    return {
        target.split("#")[0]
        for target in targets
        if "://" not in target and not target.startswith(("#", "mailto:"))
    }


def test_every_setting_is_in_the_configuration_reference() -> None:
    missing = {name.upper() for name in Settings.model_fields} - documented_settings(CONFIGURATION)
    assert not missing, f"add ZC_{', ZC_'.join(sorted(missing))} to docs/configuration.md"


def test_the_settings_table_reader_sees_a_missing_setting() -> None:
    without_cache_dir = CONFIGURATION.replace("| `ZC_CACHE_DIR` |", "| `CACHE_DIR` |")
    assert "CACHE_DIR" in documented_settings(CONFIGURATION)
    assert "CACHE_DIR" not in documented_settings(without_cache_dir)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "`make test`" in README


def test_the_readme_points_at_its_references() -> None:
    named = local_paths_named(README)
    assert {"docs/configuration.md", "docs/topics-and-measurements.md", "bench/README.md"} <= named


def test_every_path_the_readme_names_exists() -> None:
    missing = sorted(path for path in local_paths_named(README) if not (ROOT / path).exists())
    assert not missing, f"README.md names files that do not exist: {missing}"


def test_the_link_reader_sees_a_dead_link() -> None:
    assert local_paths_named("see [x](docs/gone.md#part) and `bench/gone.py`, [y](https://a.b/c)") == {
        "docs/gone.md",
        "bench/gone.py",
    }

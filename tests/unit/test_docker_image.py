"""The image (docker/Dockerfile) holds every command the CLI offers: its build stage copies every
package pyproject.toml ships, and every package a subcommand imports is one of them."""

from __future__ import annotations

import shlex

import pytest

from tests.unit.docker_build_stage import DOCKERFILE, build_stage
from tests.unit.first_party_imports import (
    PYPROJECT,
    modules_reached_by,
    package_of,
    shipped_packages,
    subcommand_handlers,
)

# The sink's Rust line formatter: its own distribution, built into a wheel beside the service's.
NATIVE_LINES = "sinks/native_lines"


def test_the_image_copies_every_package_pyproject_ships() -> None:
    stage = build_stage()
    top_levels = {package.split(".")[0] for package in shipped_packages()}
    missing = sorted(name for name in top_levels if not stage.copies_top_level(name))
    assert top_levels, "no package found from [tool.setuptools.packages.find]"
    assert not missing, f"{DOCKERFILE} does not COPY {missing} into its build stage"


def test_the_image_copies_the_files_the_wheel_build_reads() -> None:
    project = PYPROJECT["project"]
    needed = {"pyproject.toml", project["readme"], *project.get("license-files", [])}
    stage = build_stage()
    missing = sorted(name for name in needed if not stage.copies_top_level(name))
    assert not missing, f"{DOCKERFILE} does not COPY {missing}, which building the wheel reads"


def test_the_image_builds_the_sinks_rust_line_formatter_beside_the_service() -> None:
    stage = build_stage()
    wheel_builds = [shlex.split(run) for run in stage.runs if "pip wheel" in run]
    assert wheel_builds, f"{DOCKERFILE}'s build stage runs no `pip wheel`"
    # The project with the extras its commands need (`analyse`: analysis), and the Rust wheel.
    targets = {word.removeprefix("./").rstrip("/") or "." for words in wheel_builds for word in words}
    assert {".[analysis]", NATIVE_LINES} <= targets
    assert stage.copies_top_level(NATIVE_LINES.split("/")[0])


@pytest.mark.parametrize("subcommand", sorted(subcommand_handlers()))
def test_every_subcommand_imports_only_packages_the_image_installs(subcommand: str) -> None:
    stage = build_stage()
    shipped = shipped_packages()
    modules = modules_reached_by(subcommand)
    unshipped = sorted(module for module in modules if package_of(module) not in shipped)
    uncopied = sorted({module.split(".")[0] for module in modules} - stage.copied_from_context())
    assert not unshipped, (
        f"`zerocarbon {subcommand}` imports modules pyproject.toml does not ship: {unshipped}"
    )
    if not stage.copies_top_level("."):
        assert not uncopied, (
            f"`zerocarbon {subcommand}` imports packages {DOCKERFILE} does not COPY: {uncopied}"
        )

"""The wheel the image installs, built from exactly what docker/Dockerfile copies, holds every
subcommand's code and the files that code reads beside itself (pages, reference data, scripts,
mappings). Building it takes a few seconds (pip fetches setuptools for an isolated build)."""

from __future__ import annotations

import ast
import json
import os
import site
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.install_step import step_environment
from tests.unit.docker_build_stage import ROOT, build_stage
from tests.unit.first_party_imports import (
    COMMAND,
    PYPROJECT,
    module_file,
    modules_reached_by,
    shipped_packages,
    subcommand_handlers,
)

# Run with -S: no .pth file is read, so the editable install of this checkout cannot answer the
# imports; the virtualenv's site-packages stays on the path for the third-party packages.
IMPORT_EACH = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = {"file": importlib.import_module(name).__file__}
    except Exception as exc:
        found[name] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's wheel, built the way the image's build stage builds it."""
    source = tmp_path_factory.mktemp("image-src")
    build_stage().replay_copies(source)
    out = tmp_path_factory.mktemp("wheels")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), "."],
        cwd=source,
        env=step_environment(os.environ),  # an install step: no PIP_* of the caller's
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, f"the wheel does not build from the image's sources:\n{built.stderr}"
    (path,) = out.glob("*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def imported_from_wheel(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Every module some subcommand reaches, imported from the unpacked wheel: its file or error."""
    installed = tmp_path_factory.mktemp("installed")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    modules = sorted(set().union(*(modules_reached_by(name) for name in subcommand_handlers())))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), *site.getsitepackages()])}
    ran = subprocess.run(
        [sys.executable, "-S", "-c", IMPORT_EACH, *modules],
        cwd=installed.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    found: dict[str, dict[str, str]] = json.loads(ran.stdout)
    return {name: {**answer, "installed": str(installed)} for name, answer in found.items()}


@pytest.mark.parametrize("subcommand", sorted(subcommand_handlers()))
def test_every_subcommand_imports_from_the_wheel_the_image_installs(
    subcommand: str, imported_from_wheel: dict[str, dict[str, str]]
) -> None:
    failed = {}
    for module in sorted(modules_reached_by(subcommand)):
        answer = imported_from_wheel[module]
        if "error" in answer:
            failed[module] = answer["error"]
        elif not Path(answer["file"]).is_relative_to(answer["installed"]):
            failed[module] = f"imported from {answer['file']}, not from the wheel"
    assert not failed, f"`zerocarbon {subcommand}` cannot run from the wheel: {failed}"


def paths_beside_code(path: Path) -> Iterator[Path]:
    """Paths a module builds from its own location: `Path(__file__).resolve().parent / "x" / "y"`."""
    inner: set[ast.AST] = set()  # the `a / "x"` inside `a / "x" / "y"`: the whole path is enough
    for node in ast.walk(ast.parse(path.read_text())):
        if node in inner:
            continue
        parts: list[str] = []
        expression: ast.AST = node
        while isinstance(expression, ast.BinOp) and isinstance(expression.op, ast.Div):
            right = expression.right
            if not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
                break
            parts.insert(0, right.value)
            expression = expression.left
            inner.add(expression)
        else:
            folder = _folder_of_file_expression(expression, path)
            if parts and folder is not None:
                yield folder.joinpath(*parts)


def _folder_of_file_expression(node: ast.AST, path: Path) -> Path | None:
    """The folder `Path(__file__)[.resolve()].parent[.parent...]` names, or None if it is not that."""
    folder = path
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
            node = node.func.value  # .resolve(), .absolute()
        elif isinstance(node, ast.Attribute) and node.attr == "parent":
            folder, node = folder.parent, node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path":
            is_file = [type(arg) for arg in node.args] == [ast.Name] and getattr(
                node.args[0], "id", ""
            ) == "__file__"
            return folder if is_file and folder != path else None
        else:
            return None


def test_files_the_code_reads_beside_itself_ship_in_the_wheel(wheel_files: set[str]) -> None:
    packaged_code = {
        file for package in shipped_packages() for file in (ROOT / package.replace(".", "/")).glob("*.py")
    }
    needed = {
        file
        for code in packaged_code
        for named in paths_beside_code(code)
        for file in ([named] if named.is_file() else sorted(p for p in named.rglob("*") if p.is_file()))
        if "__pycache__" not in file.parts
    }
    missing = sorted(
        str(file.relative_to(ROOT)) for file in needed if file.relative_to(ROOT).as_posix() not in wheel_files
    )
    assert needed, (
        "no `Path(__file__).parent / ...` found: the scan no longer sees how the code finds its files"
    )
    assert not missing, (
        f"read by the code but not in the wheel (see [tool.setuptools.package-data]): {missing}"
    )


def test_the_wheel_installs_the_zerocarbon_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [
            name for name in archive.namelist() if name.endswith(".dist-info/entry_points.txt")
        ]
        text = archive.read(entry_points).decode()
    target = PYPROJECT["project"]["scripts"][COMMAND]
    assert f"{COMMAND} = {target}" in text.splitlines()
    assert module_file(target.partition(":")[0]) is not None

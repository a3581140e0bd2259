"""Which of the repository's own modules a `zerocarbon` subcommand reaches through its imports,
read from the source (nothing is imported but the CLI's parser), and which packages
pyproject.toml ships."""

from __future__ import annotations

import argparse
import ast
import importlib
import tomllib
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMMAND = "zerocarbon"


def module_file(name: str) -> Path | None:
    """The repository file that defines module `name`, or None if it is not one of ours."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.parent / f"{path.name}.py", path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def shipped_packages() -> set[str]:
    """The packages [tool.setuptools.packages.find] puts in the wheel, found the way setuptools
    does: folders with an __init__.py under the root, matched against include and exclude."""
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    packages: list[Path] = [top for top in ROOT.iterdir() if (top / "__init__.py").is_file()]
    found: set[str] = set()
    while packages:
        folder = packages.pop()
        name = ".".join(folder.relative_to(ROOT).parts)
        included = any(fnmatchcase(name, pattern) for pattern in find.get("include", ["*"]))
        if included and not any(fnmatchcase(name, pattern) for pattern in find.get("exclude", [])):
            found.add(name)
        packages.extend(sub for sub in folder.iterdir() if (sub / "__init__.py").is_file())
    return found


def package_of(module: str) -> str:
    """The package a module belongs to (a package belongs to itself)."""
    path = module_file(module)
    return module if path is not None and path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(nodes: Iterable[ast.AST], module: str) -> set[str]:
    """Dotted names the import statements among `nodes` may load (submodules or attributes)."""
    package = package_of(module)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def reached_modules(seeds: Iterable[str], already: Iterable[str] = ()) -> set[str]:
    """Our modules loaded by importing `seeds`: each one's imports, anywhere in its file (a
    function-level import counts, it runs when the function is called), and its packages.
    Modules in `already` count as reached and are not read."""
    reached = set(already)
    pending = list(seeds)
    while pending:
        name = pending.pop()
        path = module_file(name)
        if name in reached or path is None:
            continue  # already seen, a third-party module, or an attribute
        reached.add(name)
        parts = name.split(".")
        pending.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))
        pending.extend(_imports(ast.walk(ast.parse(path.read_text())), name))
    return reached


def entry_module() -> str:
    """The module behind the `zerocarbon` command ([project.scripts])."""
    return str(PYPROJECT["project"]["scripts"][COMMAND]).partition(":")[0]


@cache
def subcommand_handlers() -> dict[str, Callable[..., Any]]:
    """Every subcommand the CLI's parser offers, with the function it runs."""
    parser: argparse.ArgumentParser = importlib.import_module(entry_module()).build_parser()
    (subcommands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {name: sub.get_default("handler") for name, sub in subcommands.choices.items()}


@cache
def modules_reached_by(subcommand: str) -> frozenset[str]:
    """Our modules that running `zerocarbon <subcommand>` may import: the entry module's
    imports, save those inside the other subcommands' handlers, and then everything those reach."""
    handlers = subcommand_handlers()
    entry = entry_module()
    entry_path = module_file(entry)
    assert entry_path is not None
    tree = ast.parse(entry_path.read_text())
    own = handlers[subcommand]
    others = {
        handler.__name__
        for handler in handlers.values()
        if handler.__module__ == entry and handler is not own
    }
    skipped = {
        inner
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in others
        for inner in ast.walk(node)
    }
    seeds = _imports((node for node in ast.walk(tree) if node not in skipped), entry)
    seeds |= {own.__module__, entry.rpartition(".")[0]}
    return frozenset(reached_modules(seeds, already={entry}))

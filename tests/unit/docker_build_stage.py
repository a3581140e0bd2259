"""docker/Dockerfile's build stage read as data: what it copies into the source tree it builds
the wheels from, and what it runs there. Only the instructions this Dockerfile uses are read."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
BUILD_STAGE = "build"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, WORKDIR, COPY, RUN...
    arguments: str


@dataclass(frozen=True)
class Copy:
    """A COPY from the build context (the repository root) into the stage's file system."""

    sources: tuple[str, ...]  # relative to the repository root
    destination: PurePosixPath  # absolute in the image
    into_folder: bool  # the destination is a folder that receives each source by name


@dataclass(frozen=True)
class BuildStage:
    copies: tuple[Copy, ...]
    runs: tuple[str, ...]
    workdir: PurePosixPath  # where the RUN instructions build the wheels

    def copied_from_context(self) -> set[str]:
        """Repository paths the stage copies, normalised (`./zerocarbon/` -> `zerocarbon`)."""
        return {_normalised(source) for copy in self.copies for source in copy.sources}

    def copies_top_level(self, name: str) -> bool:
        copied = self.copied_from_context()
        return "." in copied or name in copied

    def replay_copies(self, into: Path) -> None:
        """Lay out in `into` the tree the stage's WORKDIR holds once its COPY lines have run."""
        for copy in self.copies:
            target = into / copy.destination.relative_to(self.workdir)
            for source in copy.sources:
                path = ROOT / _normalised(source)
                if path.is_dir():
                    # Docker copies a folder's contents, not the folder itself.
                    shutil.copytree(path, target, dirs_exist_ok=True, ignore=_UNTRACKED)
                elif copy.into_folder:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.name)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)


# Local build and cache output that .gitignore keeps out of a clone's tree.
_UNTRACKED = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "target")


def _normalised(source: str) -> str:
    return str(PurePosixPath(source)) if source.strip("./") else "."


def instructions(text: str) -> list[Instruction]:
    """The instructions in order, continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return found


def _words(arguments: str) -> list[str]:
    """An instruction's words, in its exec (JSON) or shell form."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def build_stage(text: str | None = None) -> BuildStage:
    """The stage named `build` (`FROM ... AS build`): its COPY lines, RUN lines and WORKDIR."""
    stage: list[Instruction] | None = None
    for instruction in instructions(DOCKERFILE.read_text() if text is None else text):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            is_build = len(words) >= 3 and words[-2].upper() == "AS" and words[-1] == BUILD_STAGE
            if stage is not None:
                break
            stage = [] if is_build else None
        elif stage is not None:
            stage.append(instruction)
    if stage is None:
        raise AssertionError(f"{DOCKERFILE} has no `FROM ... AS {BUILD_STAGE}` stage")

    workdir = PurePosixPath("/")
    copies: list[Copy] = []
    runs: list[str] = []
    for instruction in stage:
        if instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.arguments
        elif instruction.keyword == "RUN":
            runs.append(instruction.arguments)
        elif instruction.keyword == "COPY":
            words = _words(instruction.arguments)
            if any(word.startswith("--from") for word in words):
                continue  # from another stage or image, not from the repository
            paths = [word for word in words if not word.startswith("--")]
            *sources, destination = paths
            copies.append(
                Copy(
                    sources=tuple(sources),
                    destination=workdir / destination,
                    into_folder=destination.endswith("/") or len(sources) > 1,
                )
            )
    return BuildStage(copies=tuple(copies), runs=tuple(runs), workdir=workdir)

"""What goes into the three wheels (#21), for hatchling: ``packaging/protocol`` (``mycontroller-protocol``: the
package ``mycontroller_protocol``, the protocol both sides speak), ``packaging/edge`` (``mycontroller-edge``:
``edge/``) and ``packaging/server`` (``mycontroller``: ``chalicelib/`` and the built console). They build from the
repository's own folders, two levels up, so that ``make run`` and ``make test`` keep working from the checkout
unchanged.

Each ``pyproject.toml`` names this file as its custom build hook with ``include`` (repository paths: folders are
taken whole, without ``__pycache__``), ``exclude``, ``data`` (a folder put into the wheel under another name, e.g.
the built console) and, for the protocol wheel alone, ``stamp_version``: the version the build was given is
written into ``mycontroller_protocol/_version.py`` (``mycontroller_protocol/version.py`` reads it first).

Its metadata hook adds ``pins`` to the dependencies: distributions of this very version. The edge and the server
require the protocol wheel they were built with; the server also requires the edge wheel, whose agent the local
stack runs in-process (``chalicelib/local``). Each wheel ships its own folder once, nothing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

VERSION_FILE: Final = "mycontroller_protocol/_version.py"
"""Where the build stamps its version, with ``stamp_version`` (the protocol wheel, which the two others require at
their own version; ``mycontroller_protocol/version.py`` reads it first)."""


def _files(repo: Path, path: str) -> list[str]:
    """A repository path's files (a folder's, recursively), as repository paths; bytecode never."""
    where = repo / path
    if where.is_file():
        return [path]
    if not where.is_dir():
        raise FileNotFoundError(f"{where}: not found (the wheel needs it)")
    return sorted(p.relative_to(repo).as_posix() for p in where.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"})


def _excluded(path: str, prefixes: list[str]) -> bool:
    return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


def selected(repo: Path, include: list[str], exclude: list[str]) -> list[str]:
    """The repository paths of the files a wheel takes."""
    return [file for path in include for file in _files(repo, path) if not _excluded(file, exclude)]


class FilesHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        repo = (Path(self.root) / "../..").resolve()
        include = list(self.config.get("include", []))
        exclude = list(self.config.get("exclude", []))
        forced: dict[str, str] = build_data.setdefault("force_include", {})
        for file in selected(repo, include, exclude):
            forced[str(repo / file)] = file
        for source, target in dict(self.config.get("data", {})).items():
            folder = repo / source
            if not (folder / "index.html").is_file():
                raise FileNotFoundError(f"{folder}: not built; run `make frontend` (or `make dist`) first")
            for file in _files(repo, source):
                forced[str(repo / file)] = target + file[len(source):]
        if self.config.get("stamp_version"):
            stamp = Path(self.root) / "_version.py"  # git ignores it
            stamp.write_text(f'"""Written by the wheel build."""\n\nversion = "{self.metadata.version}"\n',
                             encoding="utf-8")
            forced[str(stamp)] = VERSION_FILE


class DependenciesHook(MetadataHookInterface):
    """The dependencies (``dynamic``: the hook's ``dependencies``) and ``pins``, distributions of this very version:
    ``mycontroller-protocol`` for the edge and the server, ``mycontroller-edge`` for the server too (the local stack
    runs the edge's gateways)."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        dependencies = list(self.config.get("dependencies", []))
        dependencies += [f"{pin}=={metadata['version']}" for pin in self.config.get("pins", [])]
        metadata["dependencies"] = dependencies

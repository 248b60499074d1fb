"""What goes into the two wheels (#21), for hatchling: ``packaging/server`` (``mycontroller``) and ``packaging/edge``
(``mycontroller-edge``) build from the repository's own folders, two levels up, so that ``make run`` and
``make test`` keep working from the checkout unchanged.

Each ``pyproject.toml`` names this file as its custom build hook with ``include`` (repository paths: folders are
taken whole, without ``__pycache__``), ``exclude``, ``protocol`` (``"include"``: the edge takes ``PROTOCOL``;
``"exclude"``: the server leaves it to the edge wheel it depends on) and ``data`` (a folder put into the wheel under
another name, e.g. the built console). The version the build was given is stamped into ``chalicelib/_version.py``
(``chalicelib/version.py`` reads it first).

Phase 2 of #21 moves ``PROTOCOL`` out of ``chalicelib`` into a package of its own that both wheels use; until then
the edge wheel carries exactly these modules of ``chalicelib`` and the server wheel requires the same version of
the edge wheel instead of shipping them twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

PROTOCOL = (
    "chalicelib/__init__.py",
    "chalicelib/version.py",
    "chalicelib/core/__init__.py",
    "chalicelib/core/envelope.py",
    "chalicelib/core/errors.py",
    "chalicelib/core/ids.py",
    "chalicelib/core/model.py",
    "chalicelib/core/ops.py",
    "chalicelib/core/shadow.py",
    "chalicelib/core/providers/__init__.py",
    "chalicelib/core/providers/esphome",
    "chalicelib/core/providers/hue",
    "chalicelib/core/providers/mysensors",
)
"""The modules of ``chalicelib`` the edge agent imports (envelopes, shadow documents, ids, the providers' codecs),
with the version."""
VERSION_FILE = "chalicelib/_version.py"


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
        protocol = self.config.get("protocol")
        if protocol == "include":
            include += PROTOCOL
        elif protocol == "exclude":
            exclude += PROTOCOL
        forced: dict[str, str] = build_data.setdefault("force_include", {})
        for file in selected(repo, include, exclude):
            forced[str(repo / file)] = file
        for source, target in dict(self.config.get("data", {})).items():
            folder = repo / source
            if not (folder / "index.html").is_file():
                raise FileNotFoundError(f"{folder}: not built; run `make frontend` (or `make dist`) first")
            for file in _files(repo, source):
                forced[str(repo / file)] = target + file[len(source):]
        stamp = Path(self.root) / "_version.py"  # git ignores it
        stamp.write_text(f'"""Written by the wheel build."""\n\nversion = "{self.metadata.version}"\n',
                         encoding="utf-8")
        forced[str(stamp)] = VERSION_FILE


class DependenciesHook(MetadataHookInterface):
    """The dependencies (``dynamic``: the hook's ``dependencies``), and with ``pin`` a distribution of this very
    version: the server wheel requires the edge wheel it was built with (the local stack runs the edge's gateways,
    and the protocol modules come with it)."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        dependencies = list(self.config.get("dependencies", []))
        pin = self.config.get("pin")
        if pin:
            dependencies.append(f"{pin}=={metadata['version']}")
        metadata["dependencies"] = dependencies

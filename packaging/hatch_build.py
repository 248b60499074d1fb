"""What goes into the two wheels (#21), for hatchling: ``packaging/server`` (``mycontroller``) and ``packaging/edge``
(``mycontroller-edge``) build from the repository's own folders, two levels up, so that ``make run`` and
``make test`` keep working from the checkout unchanged.

Each ``pyproject.toml`` names this file as its custom build hook with ``include`` (repository paths: folders are
taken whole, without ``__pycache__``), ``exclude``, ``protocol`` (``"include"``: the edge takes
``protocol_files``, the modules of ``chalicelib`` it loads; ``"exclude"``: the server leaves them to the edge wheel
it depends on) and ``data`` (a folder put into the wheel under another name, e.g. the built console). The version
the build was given is stamped into ``chalicelib/_version.py`` (``chalicelib/version.py`` reads it first).

Phase 2 of #21 moves those modules out of ``chalicelib`` into a package of its own that both wheels use; until then
the edge wheel carries exactly these modules of ``chalicelib`` and the server wheel requires the same version of
the edge wheel instead of shipping them twice.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Final

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

EDGE: Final = "edge"
SHARED: Final = "chalicelib"
ALWAYS: Final = ("chalicelib/version.py",)
"""The version travels with the protocol modules (``edge status``, ``mycontroller-edge --version``)."""


def _module_file(repo: Path, module: str) -> str | None:
    """``a.b.c`` as the repository path of its file (``a/b/c.py`` or ``a/b/c/__init__.py``), if it is one."""
    base = repo / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(repo).as_posix()
    return None


def _imported(file: Path, module: str, *, anywhere: bool) -> set[str]:
    """The modules ``file`` (module ``module``) imports: every import with ``anywhere``, else those run when it
    loads (its top level); relative ones resolved, ``from a import b`` as ``a`` and ``a.b``."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    nodes = ast.walk(tree) if anywhere else iter(tree.body)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            source = ".".join(part for part in (base, node.module or "") if part)
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def protocol_files(repo: Path) -> list[str]:
    """The files of ``chalicelib`` the edge agent loads: what ``edge/`` imports from it anywhere, what those import
    when they load, their packages' ``__init__.py``, and ``ALWAYS``. Computed at each build, so that it follows the
    agent until phase 2 of #21 gives the protocol code a package of its own."""
    wanted = {name for file in (repo / EDGE).rglob("*.py") if "__pycache__" not in file.parts
              for name in _imported(file, "", anywhere=True) if name.split(".")[0] == SHARED}
    files: set[str] = set(ALWAYS)
    seen: set[str] = set()
    while wanted:
        module = wanted.pop()
        path = _module_file(repo, module)
        if module in seen or path is None:
            continue
        seen.add(module)
        files.add(path)
        parts = module.split(".")
        wanted.update(".".join(parts[:i]) for i in range(1, len(parts)))
        wanted.update(name for name in _imported(repo / path, module, anywhere=False) if name.split(".")[0] == SHARED)
    return sorted(files)


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
            include += protocol_files(repo)
        elif protocol == "exclude":
            exclude += protocol_files(repo)
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

"""The project's one version, shown by ``--version`` (``mycontroller``, ``mycontroller-edge``), ``/api/status``,
``/api/version``, ``edge status`` and written into backups.

It comes from the git tags (``vX.Y.Z``; setuptools-scm's ``release-branch-semver`` scheme: ``0.2.0.dev5+g1a2b3c4``
is the fifth commit after ``v0.1.0``). Where it is read, first found wins:

1. ``mycontroller_protocol/_version.py``, written into the ``mycontroller-protocol`` wheel by its build
   (``packaging/hatch_build.py``) and into the Lambda package by ``infra/bundle.py``;
2. in a git checkout (``make run``, ``make test``): setuptools-scm when installed (``requirements-dev.txt``), else
   ``git describe`` read by the same rule;
3. the installed distributions' metadata (``mycontroller-protocol``, which the two others require at their own
   version, then ``mycontroller``, ``mycontroller-edge``);
4. ``0+unknown`` (a copy of the sources without git or metadata).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
SCHEME: Final = "release-branch-semver"
DISTRIBUTIONS: Final = ("mycontroller-protocol", "mycontroller", "mycontroller-edge")
UNKNOWN: Final = "0+unknown"
_DESCRIBE: Final = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)-(\d+)-g([0-9a-f]+)(-dirty)?$")


def _stamped() -> str | None:
    try:
        from ._version import version  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return str(version)


def from_describe(described: str) -> str | None:
    """``git describe --tags --long --dirty`` output as setuptools-scm's scheme words it (without the date of a
    dirty tree): on the tag its version, after it the next minor's ``.devN`` with the commit."""
    match = _DESCRIBE.match(described.strip())
    if match is None:
        return None
    major, minor, patch, distance, commit, dirty = match.groups()
    if int(distance) == 0 and not dirty:
        return f"{major}.{minor}.{patch}"
    if int(distance) == 0:
        return f"{major}.{int(minor) + 1}.0.dev0+g{commit}.dirty"
    return f"{major}.{int(minor) + 1}.0.dev{distance}+g{commit}" + (".dirty" if dirty else "")


_SCM: Final = ("import sys; from setuptools_scm import get_version; "
               "print(get_version(root=sys.argv[1], version_scheme=sys.argv[2]))")


def _have_setuptools_scm() -> bool:
    if "setuptools_scm" in sys.modules:  # imported already, or blocked (None)
        return sys.modules["setuptools_scm"] is not None
    return importlib.util.find_spec("setuptools_scm") is not None


def _from_git(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    if _have_setuptools_scm():
        # In a child process: setuptools-scm (and rich, which it loads) would stay in this process's memory for
        # good, 4 MB of the edge agent's footprint in a checkout.
        try:
            done = subprocess.run([sys.executable, "-c", _SCM, str(root), SCHEME], capture_output=True, text=True,
                                  timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return (done.stdout.strip() or None) if done.returncode == 0 else None  # no tag, no git: the next rules
    described = _git(root, "describe", "--tags", "--long", "--dirty", "--match", "v[0-9]*")
    if described is not None:
        return from_describe(described)
    # No tag fetched (a clone of one branch): setuptools-scm's words for that, 0.1.0.devN with N the commit count.
    count, commit = _git(root, "rev-list", "--count", "HEAD"), _git(root, "rev-parse", "--short=9", "HEAD")
    if count is None or commit is None:
        return None
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"0.1.0.dev{count.strip()}+g{commit.strip()}" + (".dirty" if dirty and dirty.strip() else "")


def _git(root: Path, *arguments: str) -> str | None:
    """One git command's output, or None when git is missing or says no."""
    try:
        done = subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _from_metadata() -> str | None:
    from importlib import metadata  # here: importlib.metadata is ~1 MB of the edge agent's memory, rarely needed

    for name in DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def resolve(root: Path = ROOT) -> str:
    return _stamped() or _from_git(root) or _from_metadata() or UNKNOWN


VERSION: Final = resolve()

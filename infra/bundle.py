"""The Lambda code package (``build/deployment.zip``): the app and its runtime dependencies, nothing else.

* Dependencies: ``requirements.txt`` without ``chalice`` (its CLI pulls click, pip, inquirer… into the package:
  13.7 MB of tools), installed by pip for Lambda's platform (``manylinux2014_aarch64``, CPython 3.12) from wheels
  only, at the versions installed in this virtual environment (the ones the tests ran), so nothing is compiled
  here and nothing differs from what was tested but the platform.
* Chalice's runtime is one module: ``chalice/app.py`` and ``chalice/__init__.py`` are copied from the installed
  Chalice, as ``chalice package`` itself does.
* The app: ``app.py``, ``chalicelib/`` without the local stack (``chalicelib/local/``), and the protocol code it
  shares with the edge agent (``mycontroller_protocol/``, #21) with the checkout's version stamped into it.

The zip is reproducible (sorted entries, fixed times and modes): the same sources and versions give the same
bytes, so ``sam deploy`` finds the same object in its bucket and a re-run with nothing changed changes nothing.
Installed dependencies are kept under ``build/lambda-deps/<key>/`` (the key hashes what decides them).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from .errors import InfraError

ROOT: Final = Path(__file__).resolve().parent.parent
PLATFORM: Final = "manylinux2014_aarch64"
"""Lambda's arm64 platform (``infra.functions.ARCHITECTURE``)."""
NEWER_PLATFORMS: Final = ("manylinux_2_28_aarch64",)
"""Also taken: Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34); google-re2 has newer wheels only."""
PYTHON_VERSION: Final = "3.12"
"""Lambda's runtime (``infra.functions.RUNTIME``)."""
NOT_PACKAGED: Final = ("chalice", "uvicorn")
"""Requirements the package does without: Chalice's runtime is copied as two files (``chalice_runtime``); uvicorn
serves the local stack only."""
APP_PACKAGES: Final = ("chalicelib", "mycontroller_protocol")
"""The app's packages, beside ``app.py``."""
APP_EXCLUDED: Final = ("chalicelib/local/", "mycontroller_protocol/_version.py")
"""The local stack never runs in Lambda; the version is stamped (``version_stamp``)."""
SKIPPED_PARTS: Final = ("__pycache__", "bin")
ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


class BundleError(InfraError, RuntimeError):
    """The dependencies could not be installed for Lambda's platform."""


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1).lower().replace("_", "-") if match else ""


def lambda_requirements(requirements: Path = ROOT / "requirements.txt") -> list[str]:
    """``requirements.txt``'s lines (comments dropped) but ``NOT_PACKAGED``."""
    lines = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and _name(text) not in NOT_PACKAGED:
            lines.append(text)
    return lines


def installed_versions() -> list[str]:
    """``name==version`` of every distribution of this environment: the constraints of the Lambda install."""
    pins = {f"{_name(dist.metadata['Name'])}=={dist.version}" for dist in importlib.metadata.distributions()
            if dist.metadata["Name"]}
    return sorted(pins)


def install_dependencies(build_dir: Path, requirements: list[str], constraints: list[str]) -> Path:
    """The dependencies installed for Lambda, cached under ``build_dir/lambda-deps/<key>``."""
    key = hashlib.sha256("\n".join([PLATFORM, *NEWER_PLATFORMS, PYTHON_VERSION, *requirements, "--",
                                    *constraints]).encode())
    target = build_dir / "lambda-deps" / key.hexdigest()[:16]
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target.parent / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    (target.parent / "constraints.txt").write_text("\n".join(constraints) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(target), "--platform", PLATFORM,
               *(flag for platform in NEWER_PLATFORMS for flag in ("--platform", platform)), "--implementation", "cp",
               "--python-version", PYTHON_VERSION, "--only-binary=:all:",
               "-r", str(target.parent / "requirements.txt"), "-c", str(target.parent / "constraints.txt")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")]
        raise BundleError("pip could not install the Lambda dependencies:\n" + "\n".join(errors[-20:]))
    (target / ".complete").write_text("", encoding="utf-8")
    return target


def chalice_runtime() -> list[tuple[Path, str]]:
    """Chalice's runtime, the two files ``chalice package`` puts in a package."""
    import chalice
    import chalice.app

    return [(Path(inspect.getfile(chalice.app)), "chalice/app.py"),
            (Path(inspect.getfile(chalice)), "chalice/__init__.py")]


def _files(root: Path, prefix: str = "") -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        parts = relative.split("/")
        if path.is_dir() or any(part in SKIPPED_PARTS for part in parts) or path.suffix == ".pyc":
            continue
        if relative == ".complete":
            continue
        yield path, prefix + relative


def app_files(root: Path = ROOT) -> list[tuple[Path, str]]:
    files = [(root / "app.py", "app.py")]
    files += [(path, name) for package in APP_PACKAGES for path, name in _files(root / package, f"{package}/")
              if path.suffix == ".py" and not name.startswith(APP_EXCLUDED)]
    return files


def write_zip(destination: Path, files: Iterable[tuple[Path, str]]) -> None:
    """A reproducible zip of ``(source, name)`` pairs: sorted names, fixed times, 0644 files."""
    entries = sorted(files, key=lambda item: item[1])
    names = [name for _, name in entries]
    duplicates = {name for name in names if names.count(name) > 1} if len(set(names)) != len(names) else set()
    if duplicates:
        raise BundleError(f"two files for {', '.join(sorted(duplicates))} in the package")
    temporary = destination.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for source, name in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    temporary.replace(destination)


def version_stamp(build_dir: Path) -> tuple[Path, str]:
    """``mycontroller_protocol/_version.py`` with the checkout's version: a function has neither git nor package
    metadata to read it from (``mycontroller_protocol/version.py``, #21)."""
    from mycontroller_protocol.version import VERSION

    stamp = build_dir / "_version.py"
    stamp.write_text(f'"""Written by infra/bundle.py."""\n\nversion = "{VERSION}"\n', encoding="utf-8")
    return stamp, "mycontroller_protocol/_version.py"


def build_bundle(build_dir: Path = ROOT / "build", root: Path = ROOT) -> Path:
    """``build_dir/deployment.zip``; returns its path."""
    build_dir.mkdir(parents=True, exist_ok=True)
    dependencies = install_dependencies(build_dir, lambda_requirements(root / "requirements.txt"),
                                        installed_versions())
    destination = build_dir / "deployment.zip"
    write_zip(destination, [*_files(dependencies), *chalice_runtime(), *app_files(root), version_stamp(build_dir)])
    return destination

"""What the three wheels take (#21, ``packaging/hatch_build.py``), checked without building them (the build and the
installed packages: ``tests/e2e/test_packages.py``): each its own folder, nothing twice, and the pins between them."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = {"protocol": "mycontroller_protocol/", "edge": "edge/", "server": "chalicelib/"}


@pytest.fixture(scope="module")
def hatch_build() -> ModuleType:
    pytest.importorskip("hatchling", reason="hatchling is not installed (make setup: requirements-dev.txt)")
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "packaging" / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project(name: str) -> dict[str, Any]:
    with open(ROOT / "packaging" / name / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def _hook(name: str) -> dict[str, Any]:
    return dict(_project(name)["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"])


def _taken(hatch_build: ModuleType, name: str) -> list[str]:
    hook = _hook(name)
    return list(hatch_build.selected(ROOT, hook.get("include", []), hook.get("exclude", [])))


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_each_wheel_takes_its_own_folder_only(hatch_build: ModuleType, name: str) -> None:
    files = _taken(hatch_build, name)
    assert f"{PROJECTS[name]}__init__.py" in files
    strays = [f for f in files if not f.startswith(PROJECTS[name])]
    assert not strays, strays
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", "_version.py"))]


def test_no_file_is_in_two_wheels(hatch_build: ModuleType) -> None:
    seen: dict[str, str] = {}
    for name in PROJECTS:
        for file in _taken(hatch_build, name):
            assert file not in seen, f"{file}: in the {seen[file]} and {name} wheels"
            seen[file] = name


def test_the_protocol_wheel_stamps_the_version_and_depends_on_nothing() -> None:
    assert _hook("protocol").get("stamp_version") is True
    assert not _hook("edge").get("stamp_version") and not _hook("server").get("stamp_version")
    assert _project("protocol")["project"]["dependencies"] == []


def test_the_pins_between_the_wheels() -> None:
    """The edge and the server require the protocol wheel of their version; the server the edge's too (the local
    stack runs the edge agent in-process)."""
    pins = {name: _project(name)["tool"]["hatch"]["metadata"]["hooks"]["custom"].get("pins")
            for name in ("edge", "server")}
    assert pins == {"edge": ["mycontroller-protocol"], "server": ["mycontroller-protocol", "mycontroller-edge"]}
    for name in ("edge", "server"):
        assert "dependencies" in _project(name)["project"]["dynamic"]


def test_the_pins_become_dependencies_of_this_version(hatch_build: ModuleType) -> None:
    hook = hatch_build.DependenciesHook(str(ROOT / "packaging" / "edge"),
                                        {"dependencies": ["PyYAML>=6.0"], "pins": ["mycontroller-protocol"]})
    metadata: dict[str, Any] = {"version": "1.2.3"}
    hook.update(metadata)
    assert metadata["dependencies"] == ["PyYAML>=6.0", "mycontroller-protocol==1.2.3"]

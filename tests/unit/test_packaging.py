"""What the wheels take (#21, ``packaging/hatch_build.py``), checked without building them (the build and the
installed packages: ``tests/e2e/test_packages.py``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hatch_build() -> ModuleType:
    pytest.importorskip("hatchling", reason="hatchling is not installed (make setup: requirements-dev.txt)")
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "packaging" / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_edge_takes_the_protocol_modules_it_loads_and_nothing_of_the_cloud(hatch_build: ModuleType) -> None:
    files = hatch_build.protocol_files(ROOT)
    assert {"chalicelib/__init__.py", "chalicelib/version.py", "chalicelib/core/__init__.py",
            "chalicelib/core/envelope.py", "chalicelib/core/shadow.py",
            "chalicelib/core/providers/mysensors/codec.py"} <= set(files)
    assert not [f for f in files if f.startswith(("chalicelib/api/", "chalicelib/adapters/", "chalicelib/local/",
                                                  "chalicelib/functions/", "chalicelib/services/"))
                or f in ("chalicelib/bootstrap.py", "chalicelib/settings.py")], files


def test_what_the_agent_loads_from_chalicelib_is_in_the_edge_wheel(hatch_build: ModuleType) -> None:
    """Every module of chalicelib that importing all of edge/ loads (in a fresh interpreter) is taken."""
    script = ("import importlib, pkgutil, sys, edge\n"
              "for m in pkgutil.walk_packages(edge.__path__, 'edge.'):\n"
              "    importlib.import_module(m.name)\n"
              "print('\\n'.join(sorted(k for k in sys.modules if k.startswith('chalicelib'))))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    files = set(hatch_build.protocol_files(ROOT))
    missing = [name for name in done.stdout.split() if hatch_build._module_file(ROOT, name) not in files]
    assert not missing, missing


def test_relative_imports_resolve(hatch_build: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "mod.py").write_text("from ..other import thing\nfrom . import sibling\n"
                                                     "def f():\n    import lazy\n")
    found = hatch_build._imported(tmp_path / "pkg" / "sub" / "mod.py", "pkg.sub.mod", anywhere=False)
    assert {"pkg.other", "pkg.other.thing", "pkg.sub", "pkg.sub.sibling"} <= found and "lazy" not in found
    assert "lazy" in hatch_build._imported(tmp_path / "pkg" / "sub" / "mod.py", "pkg.sub.mod", anywhere=True)

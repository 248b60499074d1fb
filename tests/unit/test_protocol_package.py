"""The protocol package (#21): ``mycontroller_protocol`` is the code the server and the edge agent share, so the
edge never loads ``chalicelib`` (a package named after Chalice, the cloud's side) and the protocol loads nothing
but the standard library. Each check imports in a fresh interpreter, where nothing is loaded yet."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PENDING_SHIMS: dict[str, str] = {
    # chalicelib module → the edge file that still imports it. Each such module is a shim re-exporting the protocol
    # package, left where another change held the importing file during the move. Only remove entries.
}

REFUSE_CHALICELIB = """
import importlib, importlib.abc, json, pkgutil, sys

ALLOWED = set(json.loads(sys.argv[1]))
ALLOWED |= {name.rpartition(".")[0] for name in list(ALLOWED)} | {"chalicelib"}


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if (name == "chalicelib" or name.startswith("chalicelib.")) and name not in ALLOWED:
            raise ModuleNotFoundError(f"{name}: the edge must not import chalicelib", name=name)
        return None


sys.meta_path.insert(0, Refuse())
import edge

names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": len(names), "chalicelib": sorted(k for k in sys.modules if k.startswith("chalicelib"))}))
"""


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_edge_module_imports_without_chalicelib() -> None:
    result = json.loads(_run(REFUSE_CHALICELIB, json.dumps(sorted(PENDING_SHIMS))))
    assert result["modules"] > 30
    loaded = set(result["chalicelib"]) - {"chalicelib", "chalicelib.core"}
    assert loaded <= set(PENDING_SHIMS), loaded


def test_the_refusal_works() -> None:
    """A finder that let everything through would pass the test above."""
    done = subprocess.run([sys.executable, "-c", REFUSE_CHALICELIB.replace("import edge\n",
                                                                          "import chalicelib.core.model\n"), "[]"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "the edge must not import chalicelib" in done.stderr


def _chalicelib_imports(file: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "chalicelib":
            found.add(str(node.module))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "chalicelib")
    return found


def test_pending_shims_are_still_needed() -> None:
    """The list only shrinks: once the edge file imports the protocol package, the entry and the shim go."""
    imported = {module: str(file.relative_to(ROOT)) for file in sorted((ROOT / "edge").rglob("*.py"))
                for module in _chalicelib_imports(file)}
    assert imported == PENDING_SHIMS


STDLIB_ONLY = """
import importlib, json, pkgutil, sys

before = set(sys.modules)
import mycontroller_protocol

for m in pkgutil.walk_packages(mycontroller_protocol.__path__, "mycontroller_protocol."):
    importlib.import_module(m.name)
tops = {name.split(".")[0] for name in set(sys.modules) - before}
print(json.dumps(sorted(tops - set(sys.stdlib_module_names) - {"mycontroller_protocol"})))
"""


def test_the_protocol_package_loads_the_standard_library_only() -> None:
    """No chalicelib, and no dependency either: the protocol wheel has none (``packaging/protocol``)."""
    assert json.loads(_run(STDLIB_ONLY)) == []


def test_the_protocol_package_never_names_chalicelib_in_code() -> None:
    offenders = {str(file.relative_to(ROOT)): sorted(found) for file in (ROOT / "mycontroller_protocol").rglob("*.py")
                 if (found := _chalicelib_imports(file))}
    assert offenders == {}

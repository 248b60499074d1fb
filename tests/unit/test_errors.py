"""One base exception per area, and no two exception classes with one name.

``except DomainError`` (``AdapterError``, ``EdgeError``, ``InfraError``, ``ProtocolError``) must catch every
exception its area defines, and a name must say which exception it is: two ``ConfigError``s (the cloud's and the
edge's) once meant that an ``except ConfigError`` could catch the other one. These tests import every module of
the project and look at the exception classes each defines.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict
from types import ModuleType

import pytest

from chalicelib.adapters.errors import AdapterError
from chalicelib.api.errors import ApiError
from chalicelib.core.errors import DomainError
from chalicelib.functions.errors import FunctionError
from chalicelib.local.errors import LocalStackError
from chalicelib.services.errors import ServiceError
from chalicelib.settings import SettingsError
from edge.errors import EdgeError
from infra.errors import InfraError
from mycontroller_protocol.errors import ProtocolError

PACKAGES = ("chalicelib", "mycontroller_protocol", "edge", "infra")
AREAS: dict[str, type[Exception]] = {
    "chalicelib.core": DomainError,
    "chalicelib.adapters": AdapterError,
    "chalicelib.services": ServiceError,
    "chalicelib.functions": FunctionError,
    "chalicelib.api": ApiError,
    "chalicelib.settings": SettingsError,
    "chalicelib.local": LocalStackError,
    "mycontroller_protocol": ProtocolError,
    "edge": EdgeError,
    "infra": InfraError,
}
"""Package → the base every exception defined in it (or below it) derives from."""

PENDING: dict[str, str] = {
    # Modules whose exceptions do not derive from their area's base yet: their owners are moving them (issue #13).
    # Only remove entries; an entry whose module complies already fails ``test_pending_entries_are_still_needed``.
}

NO_AREA_YET: dict[str, str] = {
    # Packages outside every area above, whose exceptions have no base yet (none: keep it that way).
}


def _modules() -> list[ModuleType]:
    """Every module of the project's packages, imported (``__main__`` modules run things, so they are skipped)."""
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            modules.append(importlib.import_module(info.name))
    return modules


def _defined_exceptions(module: ModuleType) -> list[type[BaseException]]:
    """The exception classes ``module`` defines (not those it imports; an alias counts once)."""
    found: dict[int, type[BaseException]] = {}
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__:
            found[id(value)] = value
    return list(found.values())


EXCEPTIONS: list[tuple[str, type[BaseException]]] = [
    (module.__name__, exception) for module in _modules() for exception in _defined_exceptions(module)
]


def _under(module_name: str, prefix: str) -> bool:
    return module_name == prefix or module_name.startswith(prefix + ".")


def _area_base(module_name: str) -> type[Exception] | None:
    matches = [prefix for prefix in AREAS if _under(module_name, prefix)]
    return AREAS[max(matches, key=len)] if matches else None


def test_the_walk_finds_exceptions_of_every_area() -> None:
    """A walk that imported nothing would pass everything below."""
    found_bases = {_area_base(module_name) for module_name, _ in EXCEPTIONS}
    assert set(AREAS.values()) <= found_bases


@pytest.mark.parametrize(("module_name", "exception"), [
    pytest.param(module_name, exception, id=f"{module_name}.{exception.__name__}")
    for module_name, exception in EXCEPTIONS if _area_base(module_name) is not None and module_name not in PENDING
])
def test_every_exception_derives_from_its_areas_base(module_name: str, exception: type[BaseException]) -> None:
    base = _area_base(module_name)
    assert base is not None
    assert issubclass(exception, base), (f"{module_name}.{exception.__name__} must derive from {base.__name__} "
                                         f"(and keep its builtin base: class X({base.__name__}, ValueError))")


def test_every_exception_lives_in_an_area() -> None:
    """A new package with exceptions gets a base (and an entry in AREAS), not a pass."""
    homeless = sorted(f"{module_name}.{exception.__name__}" for module_name, exception in EXCEPTIONS
                      if _area_base(module_name) is None
                      and not any(_under(module_name, prefix) for prefix in NO_AREA_YET))
    assert homeless == []


def test_pending_entries_are_still_needed() -> None:
    """The allow-list only shrinks: a module whose exceptions all comply leaves it."""
    complying = sorted(name for name in PENDING if all(
        issubclass(exception, base) for module_name, exception in EXCEPTIONS
        if module_name == name and (base := _area_base(module_name)) is not None))
    assert complying == [], f"remove {complying} from PENDING in tests/unit/test_errors.py"


def test_no_two_exception_classes_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for module_name, exception in EXCEPTIONS:
        where[exception.__name__].append(module_name)
    shared = {name: modules for name, modules in where.items() if len(modules) > 1}
    assert shared == {}

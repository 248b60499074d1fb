"""The project's one version (#21): from the git tags, read the same way by the builds and a checkout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mycontroller_protocol import version

PEP440: re.Pattern[str] = re.compile(r"^\d+\.\d+(\.\d+)?(\.dev\d+)?(\+[a-z0-9.]+)?$")  # 0.1.dev1+g…: no tag fetched


@pytest.mark.parametrize(("described", "expected"), [
    ("v0.1.0-0-g1a2b3c4", "0.1.0"),
    ("v0.1.0-0-g1a2b3c4-dirty", "0.2.0.dev0+g1a2b3c4.dirty"),
    ("v0.1.0-259-g14b56c6", "0.2.0.dev259+g14b56c6"),
    ("v1.4.2-3-gabcdef0-dirty\n", "1.5.0.dev3+gabcdef0.dirty"),
    ("nonsense", None),
])
def test_git_describe_reads_as_setuptools_scm_words_it(described: str, expected: str | None) -> None:
    assert version.from_describe(described) == expected


def test_the_checkout_has_a_version_from_its_tags() -> None:
    assert version.VERSION != version.UNKNOWN and PEP440.match(version.VERSION), version.VERSION


def test_a_copy_without_git_or_metadata_says_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "_from_metadata", lambda: None)
    assert version.resolve(tmp_path) == version.UNKNOWN


def test_without_setuptools_scm_git_describe_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "setuptools_scm", None)  # import fails
    found = version.resolve(version.ROOT)
    # the same release and dev-ness (the distance may have grown: commits land while the tests run)
    assert found.split(".dev")[0] == version.VERSION.split(".dev")[0], (found, version.VERSION)
    assert (".dev" in found) == (".dev" in version.VERSION) and PEP440.match(found), found


def test_the_lambda_package_is_stamped(tmp_path: Path) -> None:
    import importlib.util

    from infra.bundle import version_stamp

    stamp, name = version_stamp(tmp_path)
    assert name == "mycontroller_protocol/_version.py"
    spec = importlib.util.spec_from_file_location("stamp", stamp)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.version == version.VERSION

"""Input patterns match the whole text: ``$`` also matches before a final newline, so every pattern that checks an
id, a name or a key from outside ends in ``\\Z`` (hypothesis found ``"gw1\\n"`` passing as an id)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.core.auth import USERNAME_PATTERN
from chalicelib.core.subscriptions import check_subscription_id
from chalicelib.services.backup import backup_name
from chalicelib.services.errors import InvalidInput
from mycontroller_protocol.ids import ID_PATTERN
from mycontroller_protocol.tasmota.codec import sanitize_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pattern", [ID_PATTERN, USERNAME_PATTERN])
def test_a_trailing_newline_is_not_part_of_a_valid_name(pattern: re.Pattern[str]) -> None:
    assert pattern.match("gw1") and not pattern.match("gw1\n")


def test_ids_from_devices_and_clients_refuse_a_trailing_newline() -> None:
    assert sanitize_id("0\n") != "0\n"
    with pytest.raises(InvalidInput):
        backup_name("nightly\n")
    with pytest.raises(ValueError):
        check_subscription_id("page\n")


def test_no_anchored_pattern_of_ours_ends_in_a_dollar() -> None:
    """``re.compile(r"^…$")`` is the mistake; ``\\Z`` (or ``fullmatch``) is the fix."""
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in (ROOT / "chalicelib").rglob("*.py")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"""re\.(compile|match)\(r["']\^[^"']*\$["']""", line)]
    assert offenders == []

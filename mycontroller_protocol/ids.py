"""The id pattern, alone: the edge agent checks ids without loading the cloud's models (``model.py``, pydantic)."""

from __future__ import annotations

import re
from typing import Final

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_\-:@~]{1,128}\Z")
"""One id segment. Dots separate segments of composite ids and quick ids, so a segment has none."""

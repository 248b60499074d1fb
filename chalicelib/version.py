"""The project's version, shown by ``/api/status``, ``/api/version`` and written into backups."""

from typing import Final

VERSION: Final = "0.1.0"

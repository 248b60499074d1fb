"""The template's pieces that other modules contribute: append your function to ``CONTRIBUTORS``.

Each contributor returns a fragment (``infra/fragments.py``): ``Parameters``, ``Conditions``, ``Resources`` and
``Outputs`` of its own, ``Environment`` variables and ``Policies`` statements for functions by logical id (or
``"*"`` for all). ``infra/package.py`` merges them into the template; a name defined twice is an error.
"""

from __future__ import annotations

from collections.abc import Callable

from .console import console_fragment
from .fragments import Fragment
from .metrics import metrics_fragment
from .uploads import uploads_fragment

Contributor = Callable[[], Fragment]

CONTRIBUTORS: list[Contributor] = [console_fragment, uploads_fragment, metrics_fragment]
"""In the order they are merged (the order does not change the result: a conflict is an error)."""

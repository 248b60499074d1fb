"""``python -m chalicelib.local``: the local stack (``make run``); see ``stack.py``."""

import sys

from .stack import main

sys.exit(main())

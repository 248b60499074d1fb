"""``python -m chalicelib.local``: the local stack (``make run``; see ``stack.py``), or ``python -m chalicelib.local
dead-letters list|replay|drop`` for its dead letters (``dead_letters.py``)."""

import sys

if sys.argv[1:2] == ["dead-letters"]:
    from .dead_letters import main as dead_letters

    sys.exit(dead_letters(sys.argv[2:]))

from .stack import main

sys.exit(main())

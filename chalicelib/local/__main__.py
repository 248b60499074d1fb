"""``python -m chalicelib.local``: the local stack (``make run``; see ``stack.py``), ``python -m chalicelib.local
dead-letters list|replay|drop`` for its dead letters (``dead_letters.py``), or ``python -m chalicelib.local
import-v2 <export>`` to import a MyController v2 export (``import_v2.py``)."""

import sys

if sys.argv[1:2] == ["dead-letters"]:
    from .dead_letters import main as dead_letters

    sys.exit(dead_letters(sys.argv[2:]))

if sys.argv[1:2] == ["import-v2"]:
    from .import_v2 import main as import_v2

    sys.exit(import_v2(sys.argv[2:]))

from .stack import main

sys.exit(main())

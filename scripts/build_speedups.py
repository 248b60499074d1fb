"""Build the optional C speed-ups (chalicelib/core/_speedups.c) in place; without them pure Python does the work.

``python scripts/build_speedups.py`` (make does it). Exits 0 with a warning when there is no C compiler or no
Python headers: the speed-ups are optional.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    try:
        from setuptools import Distribution, Extension
    except ImportError:
        print("warning: setuptools is missing: the C speed-ups are not built (pure Python runs)", file=sys.stderr)
        return 0
    extension = Extension("chalicelib.core._speedups", ["chalicelib/core/_speedups.c"],
                          extra_compile_args=["-O2", "-Wall", "-Werror=implicit-function-declaration"])
    dist = Distribution({"name": "mycontroller-speedups", "ext_modules": [extension]})
    dist.script_args = ["build_ext", "--inplace", "--build-temp", str(ROOT / "build" / "speedups")]
    dist.parse_command_line()
    try:
        os.chdir(ROOT)
        dist.run_commands()
    except Exception as error:  # no compiler, no headers: keep going without them
        print(f"warning: the C speed-ups were not built ({error}); pure Python runs", file=sys.stderr)
        return 0
    built = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chalicelib" / "core").glob("_speedups*.so"))
    print("built " + ", ".join(built))
    return 0


if __name__ == "__main__":
    sys.exit(main())

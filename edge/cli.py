"""``mycontroller-edge``: the edge agent's command (the ``mycontroller-edge`` wheel; in a checkout ``python -m edge``).

    mycontroller-edge run --config edge.yaml              run (SIGTERM/SIGINT stop it cleanly)
    mycontroller-edge check --config edge.yaml            validate the config, print it with secrets masked
    mycontroller-edge status --config edge.yaml [--json]  what the running agent last reported, with its version
    mycontroller-edge install-service [--config …] [--dry-run] [--root DIR]   the systemd service (``service.py``)
    mycontroller-edge pair-hue --host <bridge> --config edge.yaml
    mycontroller-edge --version
"""

from __future__ import annotations

import sys


def version() -> str:
    from mycontroller_protocol.version import VERSION

    return VERSION


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"mycontroller-edge {version()}")
        return 0
    if args[:1] == ["install-service"]:
        from .service import main as install_service

        return install_service(args[1:])
    from .__main__ import main as agent

    return agent(args)


if __name__ == "__main__":
    sys.exit(main())

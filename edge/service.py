"""``mycontroller-edge install-service``: the agent as a systemd service, with a system user, its data directory and
the serial group.

    sudo mycontroller-edge install-service --config /etc/mycontroller/edge.yaml
    mycontroller-edge install-service --config /etc/mycontroller/edge.yaml --dry-run     # prints, changes nothing
    mycontroller-edge install-service --root /tmp/image --config /etc/mycontroller/edge.yaml   # an image's tree

It writes ``/etc/systemd/system/mycontroller-edge.service`` (``ExecStart`` is this very installation's command),
then creates the user (``useradd --system``, in the serial group), the data directory (the config's
``edge.data_dir``, owned by the user, 0750), reloads systemd and enables and starts the unit. ``--root`` writes
the unit under another root and prints the commands instead of running them (an image being built, a test);
``--dry-run`` prints the unit and the commands and writes nothing.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

UNIT: Final = "mycontroller-edge"
DEFAULT_CONFIG: Final = Path("/etc/mycontroller/edge.yaml")
DEFAULT_DATA_DIR: Final = Path("/var/lib/mycontroller-edge")
HOMES: Final = (Path("/home"), Path("/root"), Path("/run/user"))
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


@dataclass(frozen=True)
class Service:
    config: Path
    data_dir: Path
    user: str = "mycontroller"
    group: str = "mycontroller"
    serial_group: str = "dialout"
    command: tuple[str, ...] = ()
    start: bool = True

    @property
    def exec_start(self) -> str:
        return shlex.join([*self.command, "run", "--config", str(self.config)])

    def _in_home(self) -> bool:
        paths = [Path(self.command[0]) if self.command else Path(sys.executable), self.config, self.data_dir]
        return any(path.is_relative_to(home) for path in paths for home in HOMES)

    def unit(self) -> str:
        """The unit file: hardened (read-only system, private /tmp, no new privileges), writing only its data."""
        state = (f"StateDirectory={self.data_dir.relative_to('/var/lib')}\nStateDirectoryMode=0750\n"
                 if self.data_dir.is_relative_to("/var/lib") else "")
        return f"""# Written by `mycontroller-edge install-service`; run it again to rewrite it.
[Unit]
Description=MyController edge agent (gateways -> spool -> AWS IoT Core / MQTT)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={self.user}
Group={self.group}
# serial gateways (/dev/ttyUSB0, /dev/ttyACM0)
SupplementaryGroups={self.serial_group}
# optional: secrets referenced as ${{NAME}} in the config (mode 0600, owned by root)
EnvironmentFile=-{self.config.parent / "edge.env"}
ExecStart={self.exec_start}
# SIGTERM: the agent stops its gateways, flushes what it can, closes the spool; the rest is sent after the next start
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=always
RestartSec=5
{state}NoNewPrivileges=true
ProtectSystem=strict
ProtectHome={"read-only" if self._in_home() else "true"}
PrivateTmp=true
ReadWritePaths={self.data_dir}

[Install]
WantedBy=multi-user.target
"""

    def commands(self) -> list[list[str]]:
        """What makes the user, the data directory and the running unit (in this order)."""
        commands: list[list[str]] = []
        if not _exists(pwd.getpwnam, self.user):
            commands.append(["useradd", "--system", "--user-group", "--home-dir", str(self.data_dir),
                             "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups", self.serial_group,
                             self.user])
        else:
            commands.append(["usermod", "--append", "--groups", self.serial_group, self.user])
        commands.append(["install", "-d", "-o", self.user, "-g", self.group, "-m", "0750", str(self.data_dir)])
        commands.append(["systemctl", "daemon-reload"])
        commands.append(["systemctl", "enable", *(["--now"] if self.start else []), f"{UNIT}.service"])
        return commands


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def this_command() -> tuple[str, ...]:
    """How systemd starts this installation: its ``mycontroller-edge`` script beside the interpreter (pip, pipx,
    a venv), else the interpreter with ``-m edge`` (a checkout)."""
    script = Path(sys.executable).parent / "mycontroller-edge"
    return (str(script),) if script.is_file() else (sys.executable, "-m", "edge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mycontroller-edge install-service",
                                     description="Install the agent as a systemd service (needs root).")
    parser.add_argument("--config", "-c", type=Path, default=DEFAULT_CONFIG,
                        help=f"the agent's config, as the service reads it (default {DEFAULT_CONFIG})")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"the agent's data (default: the config's edge.data_dir, else {DEFAULT_DATA_DIR})")
    parser.add_argument("--user", default="mycontroller", help="the system user it runs as (made if missing)")
    parser.add_argument("--serial-group", default="dialout", help="the group owning serial ports (dialout)")
    parser.add_argument("--no-start", action="store_true", help="enable the unit without starting it now")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="write the unit under this root and print the commands instead of running them")
    parser.add_argument("--dry-run", action="store_true", help="print the unit and the commands; change nothing")
    return parser


def _data_dir(root: Path, config: Path, given: Path | None, err: TextIO) -> Path:
    """``--data-dir``, else the config's ``edge.data_dir`` (the config read under ``root``), else the default."""
    if given is not None:
        return given.absolute()
    config_file = root / config.relative_to("/")
    if not config_file.is_file():
        print(f"mycontroller-edge: warning: no config at {config_file} yet; data in {DEFAULT_DATA_DIR}", file=err)
        return DEFAULT_DATA_DIR
    from .config import load_config

    data_dir = load_config(config_file).edge.data_dir.absolute()
    return Path("/") / data_dir.relative_to(root) if data_dir.is_relative_to(root) else data_dir


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    real = args.root == Path("/") and not args.dry_run
    if real and os.geteuid() != 0:
        print("mycontroller-edge: install-service needs root (sudo); --dry-run shows what it would do", file=err)
        return EXIT_USAGE
    config = args.config.absolute()
    from .config import EdgeConfigError

    try:
        data_dir = _data_dir(args.root, config, args.data_dir, err)
    except EdgeConfigError as error:
        print(f"mycontroller-edge: {error} (fix it, or name the data directory with --data-dir)", file=err)
        return EXIT_USAGE
    service = Service(config=config, data_dir=data_dir, user=args.user, group=args.user,
                      serial_group=args.serial_group, command=this_command(), start=not args.no_start)
    if real and not _exists(grp.getgrnam, args.serial_group):
        print(f"mycontroller-edge: no group {args.serial_group!r} here; name the serial ports' group with "
              "--serial-group", file=err)
        return EXIT_USAGE
    return _install(service, args.root, dry_run=args.dry_run, real=real, out=out)


def _install(service: Service, root: Path, *, dry_run: bool, real: bool, out: TextIO) -> int:
    unit_path = root / "etc/systemd/system" / f"{UNIT}.service"
    if service._in_home():
        print(f"mycontroller-edge: warning: {service.exec_start.split()[0]} or the config is under a home directory, "
              f"which user {service.user!r} may not be able to reach; install into a system environment "
              "(e.g. python3 -m venv /opt/mycontroller-edge)", file=sys.stderr)
    if dry_run:
        print(f"# {unit_path}\n{service.unit()}", file=out)
    else:
        unit_path.parent.mkdir(parents=True, exist_ok=True)
        unit_path.write_text(service.unit(), encoding="utf-8")
        print(f"wrote {unit_path}", file=out)
    for command in service.commands():
        if not real:
            print(shlex.join(command), file=out)
            continue
        print(f"+ {shlex.join(command)}", file=out, flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            print(f"mycontroller-edge: failed: {shlex.join(command)}", file=sys.stderr)
            return EXIT_FAILED
    if real:
        print(f"installed; see it with: systemctl status {UNIT}; journalctl -u {UNIT} -f -o cat", file=out)
    return 0

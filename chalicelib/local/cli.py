"""``mycontroller``: the home server's command (the ``mycontroller`` wheel; in a checkout
``python -m chalicelib.local.cli``, or ``make run`` for ``serve``).

    mycontroller serve [--host H] [--port P] [--data-dir D] [--edge-config edge.yaml] [--no-gateways]
    mycontroller admin reset-password [--username admin] [--password-stdin]
    mycontroller backup [--output FILE]            a backup as the console makes it, kept in the data directory
    mycontroller restore FILE                      a backup archive (the console's or ``backup``'s) restored
    mycontroller replay-dead-letters [--queue ingest|handlers|all] [--id ID]
    mycontroller dead-letters list|replay|drop     all of ``python -m chalicelib.local dead-letters``
    mycontroller import-v2 EXPORT [--dry-run]      a MyController v2 export imported
    mycontroller --version

Each command takes ``--data-dir`` (default: ``$DATA_DIR``, else ``.mycontroller`` in the current directory;
``import-v2`` reads ``$DATA_DIR`` only).
``admin``, ``restore`` and ``import-v2`` write beside a running server, which would not see it: stop it first.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from ..bootstrap import Container

EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
JOB_POLL_S: Final = 0.1


def _default_data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", ".mycontroller"))


def _container(data_dir: Path) -> Container:
    """The stack's parts over ``data_dir``, without its servers or gateways (``LocalStack`` builds the same)."""
    from ..bootstrap import Container

    _local_environment_only(data_dir)
    return Container.from_env()


def _existing(data_dir: Path, err: TextIO) -> bool:
    if (data_dir / "repository.sqlite3").is_file():
        return True
    print(f"mycontroller: no server data in {data_dir} (give the one `serve` uses with --data-dir)", file=err)
    return False


def _wait(container: Container, job_id: str) -> dict[str, Any]:
    while True:
        job = container.backups.job(job_id)
        if job.get("state") != "running":
            return job
        time.sleep(JOB_POLL_S)


# ------------------------------------------------------------------------------------------------- commands

def serve(args: argparse.Namespace, _out: TextIO, _err: TextIO) -> int:
    from .stack import main as stack

    return stack(["--host", args.host, "--port", str(args.port), "--data-dir", str(args.data_dir),
                  *(["--edge-config", str(args.edge_config)] if args.edge_config else []),
                  *(["--no-gateways"] if args.no_gateways else [])])


def _new_password(args: argparse.Namespace, err: TextIO) -> tuple[str, bool]:
    """The password and whether it was generated: from stdin, typed twice at a terminal, else generated."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass(f"new password for {args.username}: ", stream=err)
        if first and getpass.getpass("again: ", stream=err) != first:
            raise ValueError("the two passwords differ")
        if first:
            return first, False
    from ..core.auth import generate_password

    return generate_password(), True


def reset_password(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..services.errors import ServiceError

    if not _existing(args.data_dir, err):
        return EXIT_FAILED
    try:
        password, generated = _new_password(args, err)
    except ValueError as error:
        print(f"mycontroller: {error}", file=err)
        return EXIT_USAGE
    container = _container(args.data_dir)
    try:
        container.auth.reset_password(args.username, password)
    except ServiceError as error:
        print(f"mycontroller: {error.message}", file=err)
        return EXIT_FAILED
    finally:
        container.close()
    shown = f": {password} (shown this once)" if generated else ""
    print(f"password of {args.username!r} reset{shown}; their sessions ended. Restart a running server.", file=out)
    return 0


def backup(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not _existing(args.data_dir, err):
        return EXIT_FAILED
    container = _container(args.data_dir)
    try:
        job, name = container.backups.run(prefix=args.prefix, retention=0)
        done = _wait(container, job.id)
        if done.get("state") != "done":
            print(f"mycontroller: backup failed: {done.get('message')}", file=err)
            return EXIT_FAILED
        if args.output is not None:
            args.output.write_bytes(container.backups.archive(name))
    finally:
        container.close()
    result = done.get("result") or {}
    where = f"; written to {args.output}" if args.output is not None else ""
    print(f"backup {name} ({result.get('size', 0)} bytes) kept in {args.data_dir}{where}", file=out)
    return 0


def restore(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..services.errors import ServiceError

    try:
        data = args.archive.read_bytes()
    except OSError as error:
        print(f"mycontroller: cannot read {args.archive}: {error}", file=err)
        return EXIT_FAILED
    args.data_dir.mkdir(parents=True, exist_ok=True)
    container = _container(args.data_dir)
    try:
        done = _wait(container, container.backups.restore(data, args.archive.name).id)
    except ServiceError as error:
        print(f"mycontroller: {error.message}", file=err)
        return EXIT_FAILED
    finally:
        container.close()
    if done.get("state") != "done":
        print(f"mycontroller: restore failed: {done.get('message')}", file=err)
        return EXIT_FAILED
    written = (done.get("result") or {}).get("written") or {}
    print(f"restored {args.archive} into {args.data_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(written.items())),
          file=out)
    return 0


def replay_dead_letters(args: argparse.Namespace, out: TextIO, _err: TextIO) -> int:
    from .dead_letters import main as dead_letters

    return dead_letters(["--data-dir", str(args.data_dir), "replay", "--queue", args.queue, "--wait", str(args.wait),
                         *[f"--id={letter}" for letter in args.id or []]], out)


# ------------------------------------------------------------------------------------------------- parsing

def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=_default_data_dir(),
                        help="the server's data (default: $DATA_DIR, else .mycontroller here)")


def _serve_parser(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the server (Ctrl-C stops it)")
    parser.add_argument("--host", default=os.environ.get("MC_HOST", "127.0.0.1"),
                        help="the address to listen on (default 127.0.0.1; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MC_PORT", "8000")))
    _data_dir_option(parser)
    parser.add_argument("--edge-config", type=Path, default=None,
                        help="run the gateways of this edge configuration instead of the simulator")
    parser.add_argument("--no-gateways", action="store_true", help="start without any gateway")
    parser.set_defaults(run=serve)


def _other_parsers(commands: Any) -> None:
    admin = commands.add_parser("admin", help="user administration on the host").add_subparsers(
        dest="admin", required=True)
    reset = admin.add_parser("reset-password", help="a new password for a user (generated unless given)")
    reset.add_argument("--username", default="admin")
    reset.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
    _data_dir_option(reset)
    reset.set_defaults(run=reset_password)
    save = commands.add_parser("backup", help="back up the server (kept in the data directory, as the console's)")
    save.add_argument("--output", "-o", type=Path, default=None, help="also write the archive to this file")
    save.add_argument("--prefix", default="mycontroller", help="the archive's name prefix")
    _data_dir_option(save)
    save.set_defaults(run=backup)
    load = commands.add_parser("restore", help="restore a backup archive (stop the server first)")
    load.add_argument("archive", type=Path)
    _data_dir_option(load)
    load.set_defaults(run=restore)
    replay = commands.add_parser("replay-dead-letters", help="queue dead letters again (running or at next start)")
    replay.add_argument("--queue", choices=("ingest", "handlers", "all"), default="all")
    replay.add_argument("--id", action="append", help="a letter's messageId (repeatable; default all)")
    replay.add_argument("--wait", type=float, default=5.0, help="seconds to wait for a running server to take them")
    _data_dir_option(replay)
    replay.set_defaults(run=replay_dead_letters)
    for name, help_text in (("dead-letters", "list, replay or drop dead letters (see its --help)"),
                            ("import-v2", "import a MyController v2 export (see its --help)")):
        commands.add_parser(name, help=help_text, add_help=False)


def parser() -> argparse.ArgumentParser:
    from mycontroller_protocol.version import VERSION

    main_parser = argparse.ArgumentParser(prog="mycontroller", description="MyController home server")
    main_parser.add_argument("--version", "-V", action="version", version=f"mycontroller {VERSION}")
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="command")
    _serve_parser(commands)
    _other_parsers(commands)
    return main_parser


def _passed_through(args: list[str]) -> Callable[[list[str]], int] | None:
    """``dead-letters`` and ``import-v2`` keep their own options (``python -m chalicelib.local``'s)."""
    if args[:1] == ["dead-letters"]:
        from .dead_letters import main as dead_letters

        return dead_letters
    if args[:1] == ["import-v2"]:
        from .import_v2 import main as import_v2

        def run(rest: list[str]) -> int:
            _local_environment_only(_default_data_dir())
            return import_v2(rest)

        return run
    return None


def _local_environment_only(data_dir: Path) -> None:
    from .stack import _local_environment

    os.environ["DATA_DIR"] = str(data_dir)
    _local_environment(data_dir)


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    passed = _passed_through(args)
    if passed is not None:
        return passed(args[1:])
    parsed = parser().parse_args(args)
    return int(parsed.run(parsed, out or sys.stdout, err or sys.stderr))


if __name__ == "__main__":
    sys.exit(main())

"""``python -m chalicelib.local dead-letters list|replay|drop``: the local stack's dead letters, looked at and replayed.

The local queues keep what was not applied in ``<DATA_DIR>/ingest-dead-letters.jsonl`` (device messages: failed
for good at once, or failed every retry) and ``handler-dead-letters.jsonl`` (handler runs that failed every retry),
one letter a line with its reason. ``list`` shows them; ``replay`` hands them back to their queue: the running stack
takes them within a second, a stopped one at its next start (``dead_letters_local``: the letters move to the queue's
replay inbox, so a letter is replayed once however often the command runs). Replays are idempotent: a device
message already applied is skipped by its message id, a handler run by its trigger. A letter that fails again comes
back with its reason. ``drop`` removes letters that can never succeed. Works whether the stack runs or not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TextIO

from ..adapters import dead_letters_local as files

QUEUES: Final = {"ingest": files.INGEST_DEAD_LETTERS, "handlers": files.HANDLER_DEAD_LETTERS}


def _paths(data_dir: Path, queue: str) -> list[tuple[str, Path]]:
    names = list(QUEUES) if queue == "all" else [queue]
    return [(name, data_dir / QUEUES[name]) for name in names]


def describe(queue: str, item: dict[str, Any]) -> list[str]:
    """What a letter holds, a line each: the device messages of an ingest letter, the handler run of another."""
    body = item.get("body")
    if not isinstance(body, str):
        return [f"  (unreadable: {str(item.get('raw', ''))[:100]!r})"]
    if queue == "ingest":
        from mycontroller_protocol.envelope import EnvelopeError

        from ..core.identity import read_ingest_body
        from ..core.publish_reader import decode_publish

        try:
            thing, publish = read_ingest_body(body)
            envelopes, bad = decode_publish(publish)
        except EnvelopeError as error:
            return [f"  not an ingest record ({error}): {body[:100]!r}"]
        lines = [f"  {envelope.gateway_id} {envelope.message_id} from {thing}: {envelope.raw[:100]!r}"
                 for envelope in envelopes]
        return lines + [f"  envelope {index}: {reason}" for index, reason in bad]
    try:
        request = json.loads(body)
        return [f"  handler {request.get('handlerId')!r} trigger {request.get('triggerId')!r} from "
                f"{request.get('source') or '?'}"]
    except (ValueError, AttributeError):
        return [f"  {body[:100]!r}"]


def _list(args: argparse.Namespace, out: TextIO) -> int:
    found = 0
    for queue, path in _paths(args.data_dir, args.queue):
        letters = files.read(path)
        waiting = files.waiting_replays(path)
        found += len(letters)
        if args.json:
            for item in letters:
                out.write(json.dumps({"queue": queue, **item}, ensure_ascii=False) + "\n")
            continue
        note = f" ({waiting} waiting to be replayed)" if waiting else ""
        out.write(f"{queue}: {len(letters)} dead letter(s) in {path}{note}\n")
        for item in letters:
            count = item.get("receiveCount")
            tries = f", after {count} deliveries" if count else ""
            out.write(f"- {item.get('messageId')} at {item.get('at', '?')}{tries}: {item.get('reason', '?')}\n")
            for line in describe(queue, item):
                out.write(line + "\n")
    return 0


def _picker(args: argparse.Namespace) -> Callable[[dict[str, Any]], bool]:
    ids = set(args.id or ())
    return (lambda item: item.get("messageId") in ids) if ids else (lambda item: True)


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    moved: list[tuple[str, Path, int]] = []
    for queue, path in _paths(args.data_dir, args.queue):
        taken = files.move_to_replay(path, _picker(args))
        if taken:
            moved.append((queue, path, len(taken)))
    if not moved:
        out.write("nothing to replay\n")
        return 0
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline and any(files.replay_inbox(path).exists() for _, path, _ in moved):
        time.sleep(0.1)
    for queue, path, count in moved:
        if files.replay_inbox(path).exists():
            out.write(f"{queue}: {count} letter(s) queued for replay; the stack is not running (or busy): they are "
                      "replayed when it takes them, at the latest at its next start\n")
        else:
            out.write(f"{queue}: {count} letter(s) replayed; those that fail again come back to {path.name} with "
                      "their reason ('dead-letters list')\n")
    return 0


def _drop(args: argparse.Namespace, out: TextIO) -> int:
    if not args.id and not args.all:
        out.write("say which: --id <messageId> (repeatable) or --all\n")
        return 2
    for queue, path in _paths(args.data_dir, args.queue):
        dropped = files.remove(path, _picker(args))
        out.write(f"{queue}: {len(dropped)} letter(s) dropped\n")
    return 0


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local dead-letters",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ".mycontroller")),
                        help="the stack's data directory (default: $DATA_DIR or .mycontroller)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("list", "show the dead letters and why each failed"),
                            ("replay", "queue the dead letters again (all, or those of --id)"),
                            ("drop", "remove dead letters that can never succeed (--id or --all)")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--queue", choices=(*QUEUES, "all"), default="all")
        if name == "list":
            command.add_argument("--json", action="store_true", help="one JSON object a letter")
        else:
            command.add_argument("--id", action="append", help="a letter's messageId (repeatable)")
        if name == "replay":
            command.add_argument("--wait", type=float, default=5.0,
                                 help="seconds to wait for a running stack to take them (default 5)")
        if name == "drop":
            command.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    run = {"list": _list, "replay": _replay, "drop": _drop}[args.command]
    return run(args, out or sys.stdout)

"""``python -m edge pair-hue``: get an application key from a Hue bridge by its link button, and keep it.

A bridge hands out a key only within 30 seconds of its round link button being pressed. The command asks the
bridge again every second until the button is pressed (or ``--timeout`` passes), then writes the key into the
Philips Hue gateway of the edge config (``provider.applicationKey``), adding such a gateway when the config has
none for that bridge. The file is rewritten from its parsed form: comments are not kept, a copy of the old file
is left beside it (``edge.yaml.bak``), and ``${NAME}`` references stay as they were. ``--print`` prints the key
instead of writing it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ...errors import EdgeError
from .config import parse_settings

DEVICE_TYPE = "mycontroller#edge"
"""How the key is named in the bridge's list of apps (the Hue app shows it)."""


class HuePairingError(EdgeError, RuntimeError):
    """Pairing did not give a key, or the key could not be written; the message says why."""


async def create_key(host: str, timeout: float = 10.0) -> str:
    """One pairing request (``POST https://<bridge>/api {"devicetype": …}``): the key, or ``LinkButtonNotPressed``.

    Over HTTPS only, as v2 bridges are spoken to (their certificate is Signify's own: not checked, as ``aiohue``
    does not): ``aiohue.create_app_key`` falls back to plain HTTP after any HTTPS answer, link button included."""
    import aiohttp
    from aiohue.errors import raise_from_error

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
            session.post(f"https://{host}/api", json={"devicetype": DEVICE_TYPE}, ssl=False) as response:
        response.raise_for_status()
        answer = await response.json(content_type=None)
    item = answer[0] if isinstance(answer, list) and answer else {}
    if isinstance(item, dict) and isinstance(item.get("error"), dict):
        raise_from_error(item["error"])
    try:
        return str(item["success"]["username"])
    except (KeyError, TypeError):
        raise HuePairingError(f"the Hue bridge at {host} gave an answer without a key: {str(answer)[:200]}") from None


async def request_key(host: str, timeout: float = 60.0, interval: float = 1.0,
                      say: Callable[[str], None] = print) -> str:
    """Ask the bridge for an application key until its link button is pressed."""
    from aiohttp import ClientError
    from aiohue.errors import AiohueException, LinkButtonNotPressed

    deadline = time.monotonic() + timeout
    say(f"Press the link button on the Hue bridge at {host} (within {timeout:.0f} s)…")
    while True:
        try:
            return await create_key(host)
        except LinkButtonNotPressed:
            pass
        except (ClientError, OSError, TimeoutError) as error:
            raise HuePairingError(f"cannot reach the Hue bridge at {host}: {error or type(error).__name__}") from None
        except AiohueException as error:
            raise HuePairingError(f"the Hue bridge at {host} refused: {error}") from None
        if time.monotonic() >= deadline:
            raise HuePairingError(f"the link button of the bridge at {host} was not pressed within {timeout:.0f} s")
        await asyncio.sleep(interval)


def write_key(path: Path, host: str, key: str, gateway_id: str | None = None) -> str:
    """Put the key into the config's Hue gateway for ``host`` (or ``gateway_id``); returns that gateway's id."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise HuePairingError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise HuePairingError(f"{path}: the top level must be a mapping")
    gateways = data.get("gateways")
    if gateways is None:
        gateways = data["gateways"] = []
    if not isinstance(gateways, list):
        raise HuePairingError(f"{path}: 'gateways' must be a list")
    hue = [g for g in gateways if isinstance(g, dict) and isinstance(g.get("provider"), dict)
           and g["provider"].get("type") == "philips_hue"]
    if gateway_id is not None:
        chosen = next((g for g in gateways if isinstance(g, dict) and g.get("id") == gateway_id), None)
        if chosen is not None and chosen not in hue:
            raise HuePairingError(f"{path}: gateway {gateway_id!r} is not a philips_hue gateway")
    else:
        same_host = [g for g in hue if _host(g) == host]
        chosen = same_host[0] if same_host else (hue[0] if len(hue) == 1 and not _host(hue[0]) else None)
    if chosen is None:
        taken = {g.get("id") for g in gateways if isinstance(g, dict)}
        new_id = gateway_id or next(i for i in ("hue", *(f"hue-{n}" for n in range(2, 100))) if i not in taken)
        chosen = {"id": new_id, "provider": {"type": "philips_hue"}}
        gateways.append(chosen)
    provider = chosen["provider"]
    provider["host"] = host
    provider.pop("username", None)
    provider["applicationKey"] = key
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    backup = path.with_name(path.name + ".bak")
    try:
        shutil.copy2(path, backup)
        temporary = path.with_name(path.name + ".new")
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777 & ~0o077 or 0o600)  # it holds a secret now
        os.replace(temporary, path)
    except OSError as error:
        raise HuePairingError(f"cannot write {path}: {error}") from None
    parse_settings({"provider": provider})  # what the gateway will read: a host and a key
    return str(chosen["id"])


def _host(gateway: dict[str, Any]) -> str:
    host = str(gateway["provider"].get("host") or "")
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    return host.rstrip("/")


def pair_command(args: argparse.Namespace) -> int:
    """The ``pair-hue`` subcommand; exit codes 0 (paired), 1 (no key), 2 (bad arguments or config)."""
    host = (args.host or "").strip()
    if not host:
        print("edge: pair-hue needs --host <bridge address>", file=sys.stderr)
        return 2
    path = Path(args.config)
    if not args.print_key and not path.is_file():
        print(f"edge: no config at {path} (give --config, or --print to only print the key)", file=sys.stderr)
        return 2
    try:
        key = asyncio.run(request_key(host, args.timeout))
    except HuePairingError as error:
        print(f"edge: {error}", file=sys.stderr)
        return 1
    if args.print_key:
        print(key)
        return 0
    try:
        gateway_id = write_key(path, host, key, args.gateway)
    except (HuePairingError, ValueError) as error:
        print(f"edge: paired, but {error}; the key is: {key}", file=sys.stderr)
        return 2
    print(f"Paired. The application key is in gateway {gateway_id!r} of {path} (the previous file is "
          f"{path.name}.bak).")
    return 0

"""MySensors firmware over the air, served by the edge: a node's bootloader gets its blocks from here, not the cloud.

The cloud assigns a firmware to a node with a control downlink (``mycontroller_protocol.mysensors.firmware``):
the firmware's id, type and version ids, checksum and size, and where to fetch the file once (a short-lived
presigned URL in AWS, a ``file://`` path in the local stack). The edge fetches it at once, checks its sha256,
keeps it under ``<data_dir>/gateways/.firmware/<sha256>`` (one copy per checksum, whichever gateway or node needs
it), and reboots the node when ``reboot`` says so. From then on it answers the node's ``ST_FIRMWARE_CONFIG_REQUEST``
and every ``ST_FIRMWARE_REQUEST`` itself, so a sleeping or slow node updates without a round trip to the cloud per
block. Block requests it answers are not sent up; the node's progress is, as ``node_ota`` reports (state, blocks
sent of total) that the cloud writes onto the node.

States: ``fetching`` → ``ready`` (the file is here) → ``running`` (blocks going out) → ``sent`` (every block went
out; the bootloader checks the CRC and boots it) → ``done`` (the node's next config request says it runs that
firmware). ``failed`` says why (the file could not be fetched before its URL expired, a checksum or HEX error).

Resuming: the assignment and the blocks already sent are kept in ``<gateway dir>/ota.json``; the file stays in the
cache. Blocks are served by index, whenever asked, so a node that lost power or an agent that restarted mid-update
goes on where the node asks; a failed fetch is retried while its URL is valid, and a new ``firmware_update`` with
the same checksum needs no download at all. A cached file no gateway's assignment names any more (a node given
another firmware since) is removed when a gateway starts, a day after it was fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from mycontroller_protocol.mysensors.firmware import (
    FirmwareError,
    FirmwareImage,
    block_response,
    config_response,
    erase_eeprom_response,
    read_block_request,
    read_config_request,
)
from mycontroller_protocol.mysensors.protocol import Stream

ST_CONFIG_REQUEST: Final = int(Stream.ST_FIRMWARE_CONFIG_REQUEST)
ST_CONFIG_RESPONSE: Final = int(Stream.ST_FIRMWARE_CONFIG_RESPONSE)
ST_REQUEST: Final = int(Stream.ST_FIRMWARE_REQUEST)
ST_RESPONSE: Final = int(Stream.ST_FIRMWARE_RESPONSE)
MAX_FILE_BYTES: Final = 4 * 1024 * 1024
"""An Intel HEX file of the largest image a bootloader takes (1 MiB) is under 3 MB."""
FETCH_TIMEOUT_S: Final = 30.0
_RETRY_FIRST_S: Final = 1.0
_RETRY_CAP_S: Final = 60.0
_REPORT_EVERY_S: Final = 2.0
URL_REQUESTS: Final = 3
"""New URLs an update asks the cloud for when its URL expired before the file was fetched."""
URL_WAIT_S: Final = 60.0
_SAVE_EVERY_S: Final = 2.0
CACHE_KEEP_S: Final = 24 * 3600.0
"""A cached firmware file no assignment names is removed at a gateway's start once this old."""

Reporter = Callable[[dict[str, Any]], None]
Rebooter = Callable[[str], Awaitable[bool]]
"""Reboots a node (``I_REBOOT``, held for a sleeping node); whether the message could be written or queued."""


@dataclass
class Assignment:
    """One node's update, as kept in ``ota.json``."""

    node: str
    firmware: str = ""
    type: int = 0
    version: int = 0
    checksum: str = ""
    size: int = 0
    url: str = ""
    url_expires: int | None = None
    reboot: bool = False
    erase: bool = False
    state: str = "fetching"
    message: str = ""
    sent: str = ""
    """Blocks sent at least once, as a hex bitmap (block i is bit i)."""
    blocks: int = 0
    rebooted: bool = False
    url_requests: int = 0
    image: FirmwareImage | None = field(default=None, repr=False, compare=False)

    def bitmap(self) -> bytearray:
        size = (self.blocks + 7) // 8
        raw = bytearray.fromhex(self.sent) if self.sent else bytearray()
        return raw[:size] + bytearray(size - len(raw[:size]))

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("image", None)
        return data


def fetch(url: str, size: int, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """The file at ``url`` (``https://``, ``http://`` or ``file://``), at most ``MAX_FILE_BYTES``."""
    if not url.startswith(("https://", "http://", "file://")):
        raise FirmwareError(f"cannot fetch firmware from {url.split(':', 1)[0]!r} URLs")
    limit = min(MAX_FILE_BYTES, size if size > 0 else MAX_FILE_BYTES)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # the scheme is checked above
        data: bytes = response.read(limit + 1)
    if len(data) > limit:
        raise FirmwareError(f"the firmware file is larger than {limit} bytes")
    return data


def prune_cache(cache: Path, also_keep: set[str], *, min_age_s: float = CACHE_KEEP_S) -> int:
    """Remove the cached firmware files that no gateway's ``ota.json`` (nor ``also_keep``) names, once older than
    ``min_age_s`` (a file fetched for an assignment not saved yet stays). A saved state that cannot be read keeps
    everything. Returns how many files went."""
    if not cache.is_dir():
        return 0
    named = {checksum.split(":", 1)[-1].lower() for checksum in also_keep}
    for saved in cache.parent.glob("*/ota.json"):
        try:
            nodes = json.loads(saved.read_text()).get("nodes") or {}
        except (OSError, ValueError, AttributeError):
            return 0
        named |= {str(item.get("checksum", "")).split(":", 1)[-1].lower() for item in nodes.values()
                  if isinstance(item, dict)}
    now = time.time()
    removed = 0
    for path in cache.iterdir():
        if path.name in named or not path.is_file() or now - path.stat().st_mtime < min_age_s:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


class OtaServer:
    """The firmware updates of one MySensors gateway's nodes."""

    def __init__(self, gateway_dir: Path, *, report: Reporter, reboot: Rebooter, logger: logging.Logger,
                 fetcher: Callable[[str, int], bytes] = fetch, url_wait_s: float = URL_WAIT_S) -> None:
        self.url_wait_s = url_wait_s
        self.path = gateway_dir / "ota.json"
        self.cache = gateway_dir.parent / ".firmware"
        self.report = report
        self.reboot = reboot
        self.logger = logger
        self.fetcher = fetcher
        self.nodes: dict[str, Assignment] = self._load()
        self.counters = {"blocks_sent": 0, "config_answers": 0, "fetches": 0, "refused_requests": 0}
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._reported: dict[str, float] = {}
        self._saved = 0.0

    # ------------------------------------------------------------------ persistence

    def _load(self) -> dict[str, Assignment]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        known = set(Assignment.__dataclass_fields__) - {"image"}
        nodes: dict[str, Assignment] = {}
        for node, item in (data.get("nodes") or {}).items():
            if isinstance(item, dict):
                with contextlib.suppress(TypeError):
                    nodes[str(node)] = Assignment(**{k: v for k, v in item.items() if k in known})
        return nodes

    def save(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._saved < _SAVE_EVERY_S:
            return
        self._saved = now
        body = json.dumps({"nodes": {node: a.record() for node, a in self.nodes.items()}}, separators=(",", ":"))
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(body)
        os.replace(temporary, self.path)

    # ------------------------------------------------------------------ assignments (control downlinks)

    def start(self) -> None:
        """After a (re)start: the images of the assignments from the cache, what is still missing fetched; cached
        files no assignment of any gateway names any more are removed."""
        with contextlib.suppress(OSError):
            removed = prune_cache(self.cache, {a.checksum for a in self.nodes.values()})
            if removed:
                self.logger.info("removed %d firmware file(s) no node is assigned any more", removed)
        for assignment in self.nodes.values():
            if not assignment.firmware or (assignment.state == "failed" and not self._url_valid(assignment)):
                continue
            self._start_fetch(assignment)

    async def stop(self) -> None:
        tasks = list(self._fetching.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._fetching.clear()
        if self.nodes:
            self.save()

    def control(self, data: dict[str, Any]) -> None:
        """A control downlink ``{"ctl": "ota", "node", ...}``: assign a firmware, or flag an EEPROM erase."""
        node = str(data.get("node") or "")
        if not node.isdigit():
            raise FirmwareError(f"an OTA control names a node id, got {node!r}")
        if data.get("refresh"):
            self._refresh(node, data)
            return
        if data.get("erase"):
            assignment = self.nodes.setdefault(node, Assignment(node, state=""))
            assignment.erase = True
            self.save()
            self.logger.info("node %s: its EEPROM is erased on its next firmware config request", node)
            return
        try:
            new = Assignment(node, firmware=str(data["firmware"]), type=int(data["type"]),
                             version=int(data["version"]), checksum=str(data["checksum"]),
                             size=int(data.get("size") or 0), url=str(data.get("url") or ""),
                             url_expires=int(data["urlExpires"]) if data.get("urlExpires") else None,
                             reboot=bool(data.get("reboot")))
        except (KeyError, TypeError, ValueError) as error:
            raise FirmwareError(f"an OTA control for node {node} lacks or garbles {error}") from None
        old = self.nodes.get(node)
        if old is not None:
            new.erase = old.erase
            if (old.checksum, old.type, old.version) == (new.checksum, new.type, new.version):
                new.sent, new.blocks = old.sent, old.blocks  # the same firmware again: keep what went out
        task = self._fetching.pop(node, None)
        if task is not None:
            task.cancel()
        self.nodes[node] = new
        self.logger.info("node %s: firmware %s (type %d, version %d) assigned", node, new.firmware, new.type,
                         new.version)
        self._start_fetch(new)

    def _refresh(self, node: str, data: dict[str, Any]) -> None:
        """A new URL for the update under way (the cloud's answer to ``urlRequest``): fetch again with it."""
        assignment = self.nodes.get(node)
        if assignment is None or assignment.checksum != data.get("checksum") or assignment.image is not None:
            self.logger.info("node %s: a new firmware URL for no update waiting for one: ignored", node)
            return
        assignment.url = str(data.get("url") or "")
        assignment.url_expires = int(data["urlExpires"]) if data.get("urlExpires") else None
        task = self._fetching.pop(node, None)
        if task is not None:
            task.cancel()
        self.logger.info("node %s: a new URL for firmware %s", node, assignment.firmware)
        self._start_fetch(assignment)

    def _cached(self, checksum: str) -> Path:
        digest = checksum.split(":", 1)[-1].lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FirmwareError(f"checksum {checksum!r} is not sha256:<64 hex digits>")
        return self.cache / digest

    def _url_valid(self, assignment: Assignment) -> bool:
        return assignment.url_expires is None or assignment.url_expires > time.time() * 1000

    def _start_fetch(self, assignment: Assignment) -> None:
        task = asyncio.ensure_future(self._prepare(assignment))
        self._fetching[assignment.node] = task
        task.add_done_callback(functools.partial(self._fetched, assignment.node))

    def _fetched(self, node: str, task: asyncio.Future[None]) -> None:
        if self._fetching.get(node) is task:
            del self._fetching[node]

    async def _prepare(self, assignment: Assignment) -> None:
        """The image from the cache or the URL, then the node's reboot when asked for. An assignment that was
        already under way (an agent restart) keeps its state."""
        resumed = assignment.state in ("ready", "running", "sent", "done")
        if not resumed:
            self._set_state(assignment, "fetching", "")
        image = await self._obtain(assignment)
        if image is None:
            return
        assignment.image = image
        if assignment.blocks != image.blocks:
            assignment.blocks, assignment.sent = image.blocks, ""
        if not resumed:
            self._set_state(assignment, "ready", f"{image.blocks} blocks, crc {image.crc:04X}")
        await self._reboot(assignment)

    async def _reboot(self, assignment: Assignment) -> None:
        if assignment.reboot and not assignment.rebooted and await self.reboot(assignment.node):
            assignment.rebooted = True
            self.save()

    def connected(self) -> None:
        """The gateway is (back) on its device: reboot the nodes whose firmware came while it was away."""
        for assignment in self.nodes.values():
            if assignment.image is not None and assignment.reboot and not assignment.rebooted and \
                    assignment.node not in self._fetching:
                self._fetching[assignment.node] = task = asyncio.ensure_future(self._reboot(assignment))
                task.add_done_callback(functools.partial(self._fetched, assignment.node))

    async def _obtain(self, assignment: Assignment) -> FirmwareImage | None:
        """The image, its file fetched again with backoff while the URL is valid; ``None`` once failed."""
        delay = _RETRY_FIRST_S
        for attempt in itertools.count(1):
            try:
                content = await self._content(assignment)
                return FirmwareImage.load(content, assignment.type, assignment.version)
            except FirmwareError as error:  # the file itself is wrong: fetching again will not help
                self._set_state(assignment, "failed", str(error))
                return None
            except OSError as error:
                expired = not self._url_valid(assignment) or getattr(error, "code", None) == 403  # S3's answer
                if expired and assignment.url_requests < URL_REQUESTS:
                    self._ask_for_url(assignment, error)
                    await asyncio.sleep(self.url_wait_s)  # a new URL cancels this wait and fetches with it
                    continue
                if not self._url_valid(assignment) or (assignment.url_expires is None and attempt >= 5):
                    self._set_state(assignment, "failed", f"the firmware could not be fetched ({error}): run "
                                    "firmware_update again")
                    return None
                self.logger.warning("node %s: fetching firmware %s failed (%s); retrying in %.0f s",
                                    assignment.node, assignment.firmware, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_CAP_S)
        return None

    async def _content(self, assignment: Assignment) -> bytes:
        path = self._cached(assignment.checksum)
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        if not assignment.url:
            raise FirmwareError("the firmware is not cached here and the control named no URL")
        self.counters["fetches"] += 1
        data = await asyncio.to_thread(self.fetcher, assignment.url, assignment.size)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest != assignment.checksum.lower():
            raise FirmwareError(f"the fetched file's checksum is {digest}, not {assignment.checksum}")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        return data

    def _ask_for_url(self, assignment: Assignment, error: OSError) -> None:
        assignment.url_requests += 1
        assignment.state, assignment.message = "fetching", f"its URL has expired ({error}): asking for a new one"
        self.save()
        self.logger.info("node %s: firmware %s: %s", assignment.node, assignment.firmware, assignment.message)
        self._send_report(assignment, url_request=True)

    # ------------------------------------------------------------------ node requests

    def handle(self, node: str, type_id: int, payload: str) -> str | None:
        """The payload of the answer to a node's stream message (its type is the request's + 1), or ``None``
        when the edge does not serve this node (the message then goes to the cloud as any other)."""
        assignment = self.nodes.get(node)
        if assignment is None:
            return None
        try:
            if type_id == ST_CONFIG_REQUEST:
                return self._config(assignment, payload)
            if type_id == ST_REQUEST:
                return self._block(assignment, payload)
        except FirmwareError as error:
            self.counters["refused_requests"] += 1
            self.logger.warning("node %s: %s", node, error)
        return None

    def _config(self, assignment: Assignment, payload: str) -> str | None:
        if assignment.erase:
            assignment.erase = False
            if not assignment.firmware:
                del self.nodes[assignment.node]
            self.save()
            self.report({"type": "node_ota", "node": assignment.node, "eepromErased": True})
            return erase_eeprom_response()
        image = assignment.image
        if image is None:
            if assignment.state == "failed" and self._url_valid(assignment) and assignment.node not in \
                    self._fetching:
                self._start_fetch(assignment)
            return None
        self.counters["config_answers"] += 1
        running = read_config_request(payload) if payload else None
        if running is not None and running.runs(image):
            if assignment.state != "done":
                self._set_state(assignment, "done", f"the node runs firmware {assignment.firmware}")
        elif assignment.state in ("ready", "done"):
            self._set_state(assignment, "running", "")
        return config_response(image)

    def _block(self, assignment: Assignment, payload: str) -> str | None:
        image = assignment.image
        if image is None:
            return None
        type_id, version, index = read_block_request(payload)
        if (type_id, version) != (image.type, image.version):
            raise FirmwareError(f"asked for firmware type {type_id} version {version}; assigned is type "
                                f"{image.type} version {image.version}")
        answer = block_response(image, index)
        bitmap = assignment.bitmap()
        bitmap[index >> 3] |= 1 << (index & 7)
        assignment.sent = bitmap.hex()
        self.counters["blocks_sent"] += 1
        if assignment.state not in ("running", "sent"):
            self._set_state(assignment, "running", "")
        if self.sent(assignment) == image.blocks and assignment.state != "sent":
            self._set_state(assignment, "sent", "every block went out; the node checks and boots it")
        else:
            self._progress(assignment)
        return answer

    # ------------------------------------------------------------------ progress

    @staticmethod
    def sent(assignment: Assignment) -> int:
        return sum(bin(byte).count("1") for byte in assignment.bitmap())

    def _set_state(self, assignment: Assignment, state: str, message: str) -> None:
        assignment.state, assignment.message = state, message
        self.save()
        self._send_report(assignment)
        log = self.logger.warning if state == "failed" else self.logger.info
        log("node %s: firmware %s %s%s", assignment.node, assignment.firmware, state,
            f": {message}" if message else "")

    def _progress(self, assignment: Assignment) -> None:
        self.save(force=False)
        if time.monotonic() - self._reported.get(assignment.node, 0.0) >= _REPORT_EVERY_S:
            self._send_report(assignment)

    def _send_report(self, assignment: Assignment, *, url_request: bool = False) -> None:
        self._reported[assignment.node] = time.monotonic()
        report = {"type": "node_ota", "node": assignment.node, "firmware": assignment.firmware,
                  "state": assignment.state, "message": assignment.message,
                  "blocksSent": self.sent(assignment), "blocks": assignment.blocks}
        if url_request:
            report["urlRequest"] = True
        self.report(report)

    def status(self) -> dict[str, Any]:
        return {node: {"firmware": a.firmware, "state": a.state, "blocks_sent": self.sent(a), "blocks": a.blocks,
                       **({"erase_eeprom": True} if a.erase else {})} for node, a in self.nodes.items()}

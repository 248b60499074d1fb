"""The host itself as a node: CPU, memory, disks and temperatures through psutil, as ``mc_json``.

The reference's "system monitoring" provider, at the edge: a Raspberry Pi running out of disk or cooking its
CPU is as much a thing to watch as the sensors it serves.

Config: ``provider: {type: system_monitoring, interval: "30s", nodeId: <host name>, nodeName: <host name>,
perCpu: true, mounts: [...] (default: every real disk), temperature: true}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any, ClassVar

from mycontroller_protocol.envelope import Downlink

from .base import Gateway, GatewayContext
from .util import clean_id, parse_duration

_SKIP_FSTYPES = frozenset({"squashfs", "tmpfs", "devtmpfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2",
                           "autofs", "devpts", "mqueue", "tracefs", "debugfs", "securityfs", "pstore", "fusectl",
                           "nsfs", "ramfs", "iso9660", "efivarfs", "binfmt_misc", "configfs", "hugetlbfs", "bpf"})


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class SystemMonitor(Gateway):
    provider: ClassVar[str] = "mc_json"

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.gateway_id = gateway_id
        self.config = config
        self.ctx = ctx
        self.logger: logging.Logger = ctx.logger
        provider = config.get("provider") or {}
        self.interval = max(0.05, parse_duration(provider.get("interval"), 30.0))
        host = socket.gethostname()
        self.node_id = clean_id(provider.get("nodeId") or host.split(".")[0], "host")
        self.node_name = str(provider.get("nodeName") or host)
        self.per_cpu = _bool(provider.get("perCpu"), True)
        self.with_temperature = _bool(provider.get("temperature"), True)
        mounts = provider.get("mounts")
        self.mounts: list[str] | None = [str(m) for m in mounts] if mounts else None
        self.samples = 0
        self.emitted = 0
        self.errors = 0
        self.running = False

    def _message(self, source: str, field: str, value: Any, metric_type: str, unit: str = "",
                 source_name: str = "", field_name: str = "") -> dict[str, Any]:
        message: dict[str, Any] = {"n": self.node_id, "s": source, "f": field, "v": value, "m": metric_type,
                                   "u": unit, "nn": self.node_name}
        if source_name:
            message["sn"] = source_name
        if field_name:
            message["fn"] = field_name
        return message

    def _disk_mounts(self) -> list[str]:
        import psutil

        if self.mounts is not None:
            return self.mounts
        seen: set[str] = set()
        mounts: list[str] = []
        for part in psutil.disk_partitions(all=False):
            if part.fstype in _SKIP_FSTYPES or part.device in seen or part.mountpoint.startswith("/snap"):
                continue
            seen.add(part.device)
            mounts.append(part.mountpoint)
        return mounts[:16]

    def sample(self) -> list[dict[str, Any]]:
        """One reading of the host; a part that fails (no permission, no sensor) is skipped, not fatal."""
        import psutil

        out: list[dict[str, Any]] = []
        self.samples += 1
        try:
            out.append(self._message("cpu", "usage", psutil.cpu_percent(interval=None), "gauge_float", "%",
                                     "CPU", "CPU usage"))
            if self.per_cpu:
                for index, percent in enumerate(psutil.cpu_percent(interval=None, percpu=True)):
                    out.append(self._message("cpu", f"core_{index}", percent, "gauge_float", "%", "CPU",
                                             f"Core {index} usage"))
            load = psutil.getloadavg()
            out.append(self._message("cpu", "load_1m", round(load[0], 2), "gauge_float", "", "CPU", "Load 1 min"))
        except (OSError, AttributeError) as error:
            self._failed("cpu", error)
        try:
            memory = psutil.virtual_memory()
            out.append(self._message("memory", "used_percent", memory.percent, "gauge_float", "%", "Memory",
                                     "Used"))
            out.append(self._message("memory", "available", int(memory.available), "gauge", "B", "Memory",
                                     "Available"))
            out.append(self._message("memory", "total", int(memory.total), "gauge", "B", "Memory", "Total"))
            swap = psutil.swap_memory()
            if swap.total:
                out.append(self._message("memory", "swap_used_percent", swap.percent, "gauge_float", "%",
                                         "Memory", "Swap used"))
        except OSError as error:
            self._failed("memory", error)
        for mount in self._disk_mounts():
            source = "disk_" + clean_id(mount, "root") if mount != "/" else "disk_root"
            try:
                usage = psutil.disk_usage(mount)
            except OSError as error:
                self._failed(f"disk {mount}", error)
                continue
            name = f"Disk {mount}"
            out.append(self._message(source, "used_percent", usage.percent, "gauge_float", "%", name, "Used"))
            out.append(self._message(source, "free", int(usage.free), "gauge", "B", name, "Free"))
            out.append(self._message(source, "total", int(usage.total), "gauge", "B", name, "Total"))
        if self.with_temperature:
            out.extend(self._temperatures())
        return out

    def _temperatures(self) -> list[dict[str, Any]]:
        import psutil

        reader = getattr(psutil, "sensors_temperatures", None)
        if reader is None:
            return []
        try:
            sensors = reader()
        except (OSError, RuntimeError) as error:
            self._failed("temperature", error)
            return []
        out = []
        used: set[str] = set()
        for chip, readings in sensors.items():
            for index, reading in enumerate(readings):
                field = clean_id(f"{chip}_{reading.label or index}".lower(), f"sensor_{index}")
                if field in used or reading.current is None:
                    continue
                used.add(field)
                label = f"{chip} {reading.label}".strip() if reading.label else chip
                out.append(self._message("temperature", field, round(float(reading.current), 1), "gauge_float",
                                         "°C", "Temperature", label))
        return out

    def _failed(self, what: str, error: BaseException) -> None:
        self.errors += 1
        if self.errors <= 10:
            self.logger.warning("%s: could not read %s: %s", self.gateway_id, what, error)

    async def run(self) -> None:
        import psutil

        psutil.cpu_percent(interval=None)  # the first reading is always 0.0: prime it
        psutil.cpu_percent(interval=None, percpu=True)
        self.running = True
        self.ctx.set_state("up", f"monitoring {self.node_name}")
        try:
            while True:
                await asyncio.sleep(self.interval)
                for message in await asyncio.to_thread(self.sample):
                    self.ctx.emit(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
                    self.emitted += 1
        finally:
            self.running = False
            self.ctx.set_state("down", "monitor stopped")

    async def send(self, downlink: Downlink) -> None:
        self.logger.info("%s: the system monitor takes no commands; ignored %r", self.gateway_id, downlink.raw[:80])

    def status(self) -> dict[str, Any]:
        return {"provider": self.provider, "protocol": "psutil", "connected": self.running, "node": self.node_id,
                "interval": self.interval, "samples": self.samples, "emitted": self.emitted, "errors": self.errors}

"""What the agent checks before it runs, beyond the config's schema: ``python -m edge check`` runs exactly this.

* **The agent as a whole** (fatal: it does not start): its data directory must be writable, and the uplink's
  TLS files (``uplink.tls.ca``, ``cert``, ``key``) readable certificates and keys that go together.
* **Each gateway** (only that gateway is refused; the others run): its plugin is built as the agent builds it
  (an unknown ``provider.type``, a broker address that is not ``tcp://``/``ssl://``, an ethernet ``server``
  without a host, options the plugin refuses), and the TLS files its ``protocol`` names exist.

Every problem is one line, ``<where>: <what>``; none is a traceback.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .config import EdgeConfig, GatewaySection, UplinkSection
from .gateways.base import Gateway, GatewayConfigError, GatewayContext, build_gateway

GATEWAY_TLS_KEYS = ("caFile", "ca", "certFile", "keyFile")
"""The keys of a gateway's ``protocol`` that name files (an MQTT broker's TLS)."""


def gateway_where(index: int, section: GatewaySection) -> str:
    return f"gateways[{index}](id={section.id})"


def file_problem(path: Path) -> str:
    """'' when ``path`` is a file this process can read, else what is wrong with it."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    return ""


def _writable_dir_problem(path: Path) -> str:
    """'' when ``path`` is, or can be created as, a directory this process writes into."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user" if probe == path else \
            f"{path} cannot be created: {probe} is not writable by this user"
    return ""


def tls_problem(ca: Path | None, cert: Path | None, key: Path | None) -> str:
    """'' when awscrt takes these files as the agent's TLS context will, else its reason in words."""
    from awscrt import io  # native code: only when TLS is configured

    try:
        if cert is not None and key is not None:
            options = io.TlsContextOptions.create_client_with_mtls_from_path(str(cert), str(key))
        else:
            options = io.TlsContextOptions()
        if ca is not None:
            options.override_default_trust_store_from_path(None, str(ca))
        io.ClientTlsContext(options)
    except Exception as error:  # awscrt raises its AwsCrtError with a code name
        name = getattr(error, "name", "") or type(error).__name__
        return f"the certificate, key or CA cannot be used ({name}): {_pem_hint(ca, cert, key)}"
    return ""


def _pem_hint(ca: Path | None, cert: Path | None, key: Path | None) -> str:
    for what, path, marker in (("certificate", cert, b"CERTIFICATE"), ("key", key, b"PRIVATE KEY"),
                               ("CA", ca, b"CERTIFICATE")):
        if path is not None and marker not in path.read_bytes()[:65536]:
            return f"the {what} {path} is not PEM ({marker.decode()})"
    if cert is not None and key is not None:
        return f"the key {key} may not be the one of the certificate {cert}"
    return "check that the files are PEM"


def uplink_problems(uplink: UplinkSection) -> list[str]:
    """The uplink's TLS files: present, readable, and usable together."""
    tls = uplink.tls
    if tls is None or uplink.type == "inprocess":
        return []
    problems = [f"uplink.tls.{name}: {problem}" for name, path in (("ca", tls.ca), ("cert", tls.cert),
                                                                   ("key", tls.key))
                if path is not None and (problem := file_problem(path))]
    if not problems:
        problem = tls_problem(tls.ca, tls.cert, tls.key)
        if problem:
            problems.append(f"uplink.tls: {problem}")
    return problems


def agent_problems(config: EdgeConfig) -> list[str]:
    """What stops the whole agent: its data directory, its spool's directory and its uplink."""
    problems = [f"edge.data_dir: {problem}" for problem in [_writable_dir_problem(config.edge.data_dir)] if problem]
    if config.spool.path is not None and (problem := _writable_dir_problem(config.spool.path.parent)):
        problems.append(f"spool.path: {problem}")
    return problems + uplink_problems(config.uplink)


def _gateway_file_problems(section: GatewaySection) -> list[str]:
    protocol = section.provider.protocol
    extra = protocol.model_extra or {} if protocol is not None else {}
    problems = []
    for key in GATEWAY_TLS_KEYS:
        value = extra.get(key)
        if isinstance(value, str) and value:
            problem = file_problem(Path(value).expanduser())  # as the plugin opens it
            if problem:
                problems.append(f"provider.protocol.{key}: {problem}")
    return problems


def build_plugin(section: GatewaySection, ctx: GatewayContext, override: dict[str, Any] | None = None) -> Gateway:
    """The gateway's plugin, built as the agent builds it; ``GatewayConfigError`` (one line) if it cannot be.

    ``override`` replaces top-level keys of the plugin's config (``check`` points ``dataDir`` at a scratch
    directory, so that checking creates nothing where the agent keeps its state)."""
    problems = _gateway_file_problems(section)
    if problems:
        raise GatewayConfigError("; ".join(problems))
    try:
        return build_gateway(section.id, {**section.plugin_config(), **(override or {})}, ctx)
    except GatewayConfigError as error:
        raise GatewayConfigError(str(error).removeprefix(f"gateway {section.id!r}: ")) from None
    except Exception as error:  # a plugin refusing its options (ValueError, KeyError…) says it in one line
        text = str(error) or type(error).__name__
        raise GatewayConfigError(text if isinstance(error, ValueError) else f"{type(error).__name__}: {text}") \
            from None


class _DryContext:
    """A gateway context that keeps nothing: plugins are only built, never run."""

    def __init__(self, gateway_id: str, provider: str, data_dir: Path) -> None:
        self.gateway_id = gateway_id
        self.provider = provider
        self.data_dir = data_dir
        self._logger = logging.getLogger(f"edge.check.{gateway_id}")

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> None:
        return None

    def set_state(self, status: str, message: str = "") -> None:
        return None

    @property
    def logger(self) -> logging.Logger:
        return self._logger


def gateway_problems(config: EdgeConfig) -> list[str]:
    """Each enabled gateway built as the agent would; the problem of each one that cannot be, one line each."""
    import edge.gateways  # noqa: F401 - registers the built-in plugins, as the agent does

    problems = []
    with tempfile.TemporaryDirectory(prefix="edge-check-") as scratch:
        for index, section in enumerate(config.gateways):
            if not section.enabled:
                continue
            ctx = _DryContext(section.id, section.provider.type, Path(scratch))
            try:
                build_plugin(section, ctx, {"dataDir": scratch})
            except GatewayConfigError as error:
                problems.append(f"{gateway_where(index, section)}: {error}")
    return problems


def check(config: EdgeConfig) -> tuple[list[str], list[str]]:
    """``(fatal, per_gateway)``: what stops the agent, and the gateways it would refuse (the others run)."""
    return agent_problems(config), gateway_problems(config)

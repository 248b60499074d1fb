"""Where handlers and webhook variables may connect: the outbound policy.

A webhook handler, a task's webhook variable, an email handler's SMTP host and an MQTT handler's own broker are
addresses users type; unchecked, they reach what the controller can reach and its users cannot: the machine
itself, the cloud's metadata service (credentials), the private network around a Lambda function. So every
connection they make is checked on the address it is about to connect to, after name resolution (a name that
resolves to a refused address is refused: DNS rebinding gets the address checked, not the name), and each redirect
is a new connection checked the same way (``adapters/outbound.py`` does the connecting).

The rules, in order:

1. Cloud metadata and credential endpoints (``METADATA``: 169.254.169.254, 169.254.170.2, 169.254.170.23,
   fd00:ec2::254, fd00:ec2::23) are refused, always, even when listed.
2. A host listed in the system settings' ``outbound.allow`` (by name as the URL writes it, ``*.example.org`` for
   its subdomains) or an address inside a listed network (``192.168.1.20``, ``10.0.0.0/8``, ``::1``) is allowed.
3. Loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10), unspecified (0.0.0.0, ::), multicast and
   reserved addresses (240.0.0.0/4, broadcast) are refused, always.
4. Private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 and the other non-global ranges) are refused
   in AWS Lambda and allowed elsewhere: a home controller talks to its LAN (``OUTBOUND_PRIVATE`` overrides).
5. Anything else (a global address) is allowed.

IPv6 forms of an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64's ``64:ff9b::/96``) are judged as that address.
Pure: no resolution or connection here.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .allow_list import METADATA, IPAddress, IPNetwork, parse_allow
from .errors import DomainError
from .ports import Repository

NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
ALLOW_HINT: Final = "add the host or its network to the system settings' outbound.allow to allow it"


class OutboundRefused(DomainError, OSError):
    """A connection the outbound policy does not allow; the message says why and how to allow it (an ``OSError``
    too, so that the socket libraries that call ``connect_checked`` carry it as the connection failure it is)."""


def _address(text: str) -> IPAddress:
    """The address a connection goes to, as the rules judge it (IPv4 inside IPv6 unwrapped)."""
    ip = ipaddress.ip_address(text.split("%", 1)[0])  # a zone (fe80::1%eth0) is not part of the address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def kind_of(ip: IPAddress) -> str | None:
    """Why an address is not on the open internet (``loopback``, ``link-local``, …, ``private``), or None."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    if not ip.is_global:
        return "private"
    return None


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What may be connected to: the always-refused kinds, private networks per ``private``, the allow list."""

    private: bool = True
    """Whether private networks (rule 4) are allowed."""
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, *entries: str, private: bool = True) -> OutboundPolicy:
        hosts, networks = parse_allow(entries)
        return cls(private=private, hosts=hosts, networks=networks)

    def _listed_host(self, host: str) -> bool:
        name = host.strip("[]").lower().rstrip(".")
        if name in self.hosts:
            return True
        return any(entry.startswith("*.") and name.endswith(entry[1:]) for entry in self.hosts)

    def refusal(self, host: str, address: str) -> str | None:
        """Why ``host`` (as the URL names it) may not be reached at ``address`` (one it resolved to), or None."""
        try:
            ip = _address(address)
        except ValueError:
            return f"{host} resolved to {address!r}, not an IP address"
        shown = host if host.strip("[]") == address else f"{host} ({address})"
        if ip in METADATA:
            return f"{shown} is a cloud metadata address: never allowed"
        if self._listed_host(host) or any(ip.version == net.version and ip in net for net in self.networks):
            return None
        kind = kind_of(ip)
        if kind is None or (kind == "private" and self.private):
            return None
        where = " from AWS Lambda" if kind == "private" else ""
        return f"{shown} is a {kind} address, not allowed{where}: {ALLOW_HINT}"

    def check(self, host: str, address: str) -> None:
        """``OutboundRefused`` unless the policy allows connecting to ``address`` for ``host``."""
        reason = self.refusal(host, address)
        if reason is not None:
            raise OutboundRefused(reason)


@dataclass
class PolicySource:
    """The current policy of a process: the stored system settings' ``outbound.allow`` (re-read every ``ttl_s``,
    so a change reaches warm Lambda instances within seconds) and whether private networks are allowed here."""

    repository: Repository
    private: bool
    ttl_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _policy: OutboundPolicy | None = field(default=None, repr=False)
    _loaded_at: float = field(default=0.0, repr=False)

    def __call__(self) -> OutboundPolicy:
        from .settings import load_settings

        with self._lock:
            now = self.clock()
            if self._policy is None or now - self._loaded_at >= self.ttl_s:
                allow = load_settings(self.repository).outbound.allow
                try:
                    hosts, networks = parse_allow(allow)
                except ValueError:  # validated when saved; a stored list that no longer reads allows nothing more
                    hosts, networks = frozenset(), ()
                self._policy = OutboundPolicy(private=self.private, hosts=hosts, networks=networks)
                self._loaded_at = now
            return self._policy

    def invalidate(self) -> None:
        with self._lock:
            self._policy = None

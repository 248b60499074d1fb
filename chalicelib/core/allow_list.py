"""The allow list of outbound requests (the system settings' ``outbound.allow``): its entries read and checked
here, apart from ``outbound.py``'s policy so that the settings model can validate a list without importing it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA: Final[frozenset[IPAddress]] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23"))
"""Instance metadata (EC2, also Azure and GCP's address), ECS and EKS credential endpoints, their IPv6 forms."""
MAX_ALLOW_ENTRIES: Final = 100
_HOST: Final = re.compile(r"^(\*\.)?(?=.{1,253}\Z)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
                          r"(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\Z")


def parse_allow(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Host names and networks of an allow list; ``ValueError`` naming the first entry that is neither (or that
    names a metadata address)."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = str(raw).strip().lower().rstrip(".")
        if not entry:
            raise ValueError("an empty entry")
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if not _HOST.match(entry):
                raise ValueError(f"{raw!r} is neither a host name, an address nor a network (CIDR)") from None
            hosts.add(entry)
            continue
        if network.num_addresses <= 2 and any(a.version == network.version and a in network for a in METADATA):
            raise ValueError(f"{raw!r} is a cloud metadata address: never allowed")
        networks.append(network)
    return frozenset(hosts), tuple(networks)

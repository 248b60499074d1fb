"""The outbound policy's rules (``core/outbound.py``): what handlers and webhook variables may connect to, judged on
the address a connection would use."""

from __future__ import annotations

import pytest

from chalicelib.core.outbound import OutboundPolicy, PolicySource, kind_of, parse_allow
from chalicelib.core.settings import Outbound, SystemSettings


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"), ("2002:7f00:1::", "loopback"),  # NAT64 and 6to4 forms of 127.0.0.1
    ("169.254.10.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("255.255.255.255", "reserved"), ("240.0.0.1", "reserved"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.20", "private"), ("100.64.0.1", "private"),
    ("fd12::1", "private"), ("93.184.215.14", None), ("2606:4700::1111", None),
])
def test_every_address_has_its_kind(address: str, kind: str | None) -> None:
    from chalicelib.core.outbound import _address

    assert kind_of(_address(address)) == kind


def test_loopback_and_link_local_are_refused_everywhere_private_networks_in_lambda_only() -> None:
    home, lambda_ = OutboundPolicy(private=True), OutboundPolicy(private=False)
    for address in ("127.0.0.1", "::1", "169.254.1.1", "0.0.0.0", "::ffff:127.0.0.1"):
        assert home.refusal("h", address) and lambda_.refusal("h", address), address
    assert home.refusal("nas", "192.168.1.20") is None
    assert "private address, not allowed from AWS Lambda" in (lambda_.refusal("nas", "192.168.1.20") or "")
    assert home.refusal("example.org", "93.184.215.14") is None and lambda_.refusal("x", "93.184.215.14") is None
    said = home.refusal("localhost", "127.0.0.1") or ""
    assert said == ("localhost (127.0.0.1) is a loopback address, not allowed: add the host or its network to the "
                    "system settings' outbound.allow to allow it")


def test_the_allow_list_lets_listed_hosts_and_networks_through_but_never_metadata() -> None:
    policy = OutboundPolicy.allowing("127.0.0.1", "10.0.0.0/8", "nas.lan", "*.home.arpa", "169.254.0.0/16",
                                     private=False)
    assert policy.refusal("127.0.0.1", "127.0.0.1") is None and policy.refusal("x", "127.0.0.2")
    assert policy.refusal("svc", "10.20.30.40") is None and policy.refusal("svc", "192.168.1.1")
    assert policy.refusal("NAS.lan.", "127.0.0.1") is None  # a listed name is trusted whatever it resolves to
    assert policy.refusal("cam.home.arpa", "192.168.1.9") is None and policy.refusal("home.arpa", "192.168.1.9")
    assert policy.refusal("link", "169.254.3.3") is None
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "::ffff:169.254.169.254"):
        assert "cloud metadata address: never allowed" in (policy.refusal("nas.lan", address) or ""), address


@pytest.mark.parametrize("entry, said", [
    ("169.254.169.254", "never allowed"), ("fd00:ec2::254/128", "never allowed"),
    ("http://nas.lan/", "neither a host name"), ("nas lan", "neither a host name"), ("", "empty"),
])
def test_bad_allow_entries_are_refused_naming_them(entry: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_allow([entry])


def test_the_system_settings_carry_the_allow_list_and_the_source_follows_them() -> None:
    from chalicelib.adapters.repository_memory import MemoryRepository
    from chalicelib.core.model import Kind

    assert SystemSettings().outbound.allow == []
    with pytest.raises(ValueError, match=r"entry 1: '169\.254\.169\.254' is a cloud metadata address"):
        Outbound(allow=["10.0.0.0/8", "169.254.169.254"])
    repository = MemoryRepository(None, dump_interval_s=0)
    now = [0.0]
    source = PolicySource(repository, private=False, ttl_s=5, clock=lambda: now[0])
    assert source().refusal("h", "127.0.0.1")
    repository.put(Kind.SETTINGS, SystemSettings(outbound=Outbound(allow=["127.0.0.1"])).record())
    assert source().refusal("h", "127.0.0.1")  # still the cached policy
    now[0] = 5.0
    assert source().refusal("h", "127.0.0.1") is None and source().private is False

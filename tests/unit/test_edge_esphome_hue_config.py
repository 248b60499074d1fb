"""ESPHome and Hue gateway options in the reference's shape: defaults, what wins, what is refused and how it says
so; the pairing step's rewrite of the config; and their secrets masked wherever configs are shown."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import parse_config
from edge.errors import EdgeError
from edge.gateways import build_gateway
from edge.gateways.base import GatewayConfigError
from edge.gateways.esphome import EspHomeConfigError, parse_settings
from edge.gateways.hue import HueConfigError
from edge.gateways.hue import parse_settings as parse_hue
from edge.gateways.hue.pairing import HuePairingError, write_key
from mycontroller_protocol.shadow import REDACTED, redact_secrets

KEY = "px7tsbK3C7bpXHr2OevEV2ZMg/FrNBw2+O2pNPbedtA="
OTHER_KEY = "S8HQgEZVbHi0qwjg1cyRB5XDj6JpRvFXXgFiudvxFSs="


def esphome(**provider: Any) -> dict[str, Any]:
    return {"id": "esp", "provider": {"type": "esphome", **provider}}


def test_esphome_reference_shape_with_defaults_and_what_wins() -> None:
    settings = parse_settings(esphome(password="global", encryptionKey=KEY, timeout="3s", aliveCheckInterval="30s",
                                      nodes={"kitchen": {"address": "192.168.1.60"},
                                             "hall": {"address": "hall.local:6055", "encryptionKey": OTHER_KEY,
                                                      "password": "own", "timeout": "10s"},
                                             "garage": {"address": "[fe80::1]:6053", "useGlobalEncryptionKey": False,
                                                        "useGlobalPassword": "false"},
                                             "attic": {"address": "10.0.0.9", "disabled": True}}))
    kitchen, hall, garage = settings.nodes
    assert (kitchen.node_id, kitchen.host, kitchen.port, kitchen.password, kitchen.encryption_key) == (
        "kitchen", "192.168.1.60", 6053, "global", KEY)
    assert (kitchen.timeout_s, kitchen.alive_check_s) == (3.0, 30.0)
    assert (hall.host, hall.port, hall.password, hall.encryption_key, hall.timeout_s) == ("hall.local", 6055, "own",
                                                                                         OTHER_KEY, 10.0)
    assert (garage.host, garage.password, garage.encryption_key) == ("fe80::1", None, None)
    assert not settings.discovery and settings.reconnect_cap_s == 15.0


def test_esphome_nodes_may_be_a_list_and_discovery_alone_is_enough() -> None:
    settings = parse_settings(esphome(nodes=[{"id": "kitchen", "address": "10.0.0.2:6053"}]))
    assert [n.node_id for n in settings.nodes] == ["kitchen"]
    assert parse_settings(esphome(discovery=True, encryptionKey=KEY)).nodes == ()


@pytest.mark.parametrize(("provider", "message"), [
    ({"nodes": {}}, "nothing to connect to"),
    ({"nodes": {"kitchen": {"address": "10.0.0.2", "disabled": True}}}, "nothing to connect to"),
    ({"nodes": {"kit.chen": {"address": "10.0.0.2"}}}, "node id must be"),
    ({"nodes": {"kitchen": {}}}, "provider.nodes.kitchen: address is required"),
    ({"nodes": {"kitchen": {"address": "10.0.0.2:99999"}}}, "port of address"),
    ({"nodes": {"kitchen": {"address": "10.0.0.2", "encryptionKey": "c2hvcnQ="}}}, "base64 32-byte key"),
    ({"encryptionKey": "not base64 at all!", "nodes": {"kitchen": {"address": "10.0.0.2"}}}, "base64 32-byte key"),
    ({"nodes": "kitchen"}, "must map node ids"),
    ({"nodes": [{"address": "10.0.0.2"}]}, "needs an 'id'"),
    ({"discovery": True, "discoveryInterfaces": "lo"}, "discoveryInterfaces"),
])
def test_esphome_options_that_cannot_work_are_refused_naming_the_key(provider: dict[str, Any], message: str) -> None:
    with pytest.raises(EspHomeConfigError, match=message):
        parse_settings(esphome(**provider))


def test_hue_options() -> None:
    settings = parse_hue({"provider": {"type": "philips_hue", "host": "https://192.168.1.2/", "username": "abc",
                                       "syncInterval": "5m"}})
    assert (settings.host, settings.app_key, settings.sync_s, settings.timeout_s) == ("192.168.1.2", "abc", 300.0,
                                                                                      10.0)
    with pytest.raises(HueConfigError, match=r"provider\.host is required"):
        parse_hue({"provider": {"type": "philips_hue"}})
    with pytest.raises(HueConfigError, match=r"pair-hue --host 192\.168\.1\.2"):
        parse_hue({"provider": {"type": "philips_hue", "host": "192.168.1.2"}})


class _Ctx:
    gateway_id = "g"
    provider = "esphome"
    logger = logging.getLogger("test")

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> None: ...

    def set_state(self, status: str, message: str = "") -> None: ...


def test_a_bad_plugin_config_is_that_gateways_error_only() -> None:
    """Not a ``GatewayConfigError`` (which stops the agent): the agent keeps the other gateways running."""
    for config in (esphome(nodes={}), {"id": "hue", "provider": {"type": "philips_hue"}}):
        with pytest.raises(EdgeError) as caught:
            build_gateway("g", config, _Ctx())
        assert isinstance(caught.value, ValueError) and not isinstance(caught.value, GatewayConfigError)


def test_keys_and_passwords_are_masked_where_configs_are_shown() -> None:
    config = parse_config({"edge": {"id": "pi"}, "gateways": [
        {"id": "esp", "provider": {"type": "esphome", "encryptionKey": KEY, "nodes": {
            "kitchen": {"address": "10.0.0.2", "encryptionKey": OTHER_KEY, "password": "pw"}}}},
        {"id": "hue", "provider": {"type": "philips_hue", "host": "10.0.0.3", "applicationKey": "abc"}}]})
    shown = config.redacted()["gateways"]
    assert shown[0]["provider"]["encryptionKey"] == "***"
    assert shown[0]["provider"]["nodes"]["kitchen"] == {"address": "10.0.0.2", "encryptionKey": "***",
                                                        "password": "***"}
    assert shown[1]["provider"]["applicationKey"] == "***"
    cloud = redact_secrets({"type": "esphome", "encryptionKey": KEY, "nodes": {"k": {"encryptionKey": KEY}}})
    assert cloud["encryptionKey"] == REDACTED and cloud["nodes"]["k"]["encryptionKey"] == REDACTED
    assert redact_secrets({"applicationKey": "abc"}) == {"applicationKey": REDACTED}


# --------------------------------------------------------------------------------------------- pairing


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_key_goes_into_the_gateway_for_that_bridge(tmp_path: Path) -> None:
    path = write(tmp_path / "edge.yaml", {"edge": {"id": "pi"}, "gateways": [
        {"id": "upstairs", "provider": {"type": "philips_hue", "host": "10.0.0.3", "username": "old"}},
        {"id": "downstairs", "provider": {"type": "philips_hue", "host": "https://10.0.0.4"}}]})
    assert write_key(path, "10.0.0.4", "new-key") == "downstairs"
    gateways = yaml.safe_load(path.read_text())["gateways"]
    assert gateways[1]["provider"] == {"type": "philips_hue", "host": "10.0.0.4", "applicationKey": "new-key"}
    assert write_key(path, "10.0.0.3", "newer") == "upstairs"
    assert yaml.safe_load(path.read_text())["gateways"][0]["provider"] == {"type": "philips_hue", "host": "10.0.0.3",
                                                                            "applicationKey": "newer"}
    assert write_key(path, "10.0.0.9", "third") == "hue"  # a bridge the config does not have: a gateway for it
    assert write_key(path, "10.0.0.10", "fourth") == "hue-2"
    assert yaml.safe_load((tmp_path / "edge.yaml.bak").read_text())["gateways"][-1]["id"] == "hue"


def test_an_empty_hue_gateway_is_filled_and_a_named_one_must_be_hue(tmp_path: Path) -> None:
    path = write(tmp_path / "edge.yaml", {"edge": {"id": "pi"}, "gateways": [
        {"id": "hue", "provider": {"type": "philips_hue"}},
        {"id": "ms", "provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "portname": "/dev/x"}}}]})
    assert write_key(path, "10.0.0.3", "k") == "hue"
    with pytest.raises(HuePairingError, match="'ms' is not a philips_hue gateway"):
        write_key(path, "10.0.0.3", "k", gateway_id="ms")
    path.write_text("- just a list\n")
    with pytest.raises(HuePairingError, match="top level must be a mapping"):
        write_key(path, "10.0.0.3", "k")

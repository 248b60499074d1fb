"""The edge agent applying gateway configs from its shadow (the in-process shadow service plays AWS IoT):
only changed gateways are touched, a bad config is rejected while the old one keeps running, the applied
config survives a restart without the cloud, the file's gateways win, and what it runs is reported."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chalicelib.adapters.shadow_local import LocalShadowStore
from chalicelib.core.publish_reader import decode_publish
from edge.agent import EdgeAgent
from edge.config import EdgeConfigError, parse_config
from edge.gateways.base import Gateway, GatewayContext, register_gateway
from edge.uplink.inprocess import InProcessUplink
from mycontroller_protocol.envelope import Downlink, encode_downlinks
from mycontroller_protocol.shadow import config_hash

THING = "pi-1"


@register_gateway("test_probe")
class ProbeGateway(Gateway):
    """Runs until cancelled; remembers every instance started and stopped, with its config."""

    started: ClassVar[list[ProbeGateway]] = []
    stopped: ClassVar[list[ProbeGateway]] = []

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        if config["provider"].get("refuse"):
            raise ValueError("this plugin refuses the option 'refuse'")
        self.gateway_id, self.config, self.ctx = gateway_id, config, ctx
        self.received: list[Downlink] = []

    async def run(self) -> None:
        ProbeGateway.started.append(self)
        self.ctx.set_state("up", "")
        try:
            await asyncio.Event().wait()
        finally:
            ProbeGateway.stopped.append(self)

    async def send(self, downlink: Downlink) -> None:
        self.received.append(downlink)

    def status(self) -> dict[str, Any]:
        return {}


PUBLISHED: list[bytes] = []
"""What the agent sent up (envelope batches) in the current test."""


def gateway_states(gateway_id: str) -> list[str]:
    return [e.raw for body in list(PUBLISHED) for e in decode_publish(body)[0]
            if e.gateway_id == gateway_id and e.provider == "edge"]


def probe(port: int = 1, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "provider": {"type": "test_probe", "port": port}, **extra}


def running(agent: EdgeAgent) -> dict[str, Any]:
    return {gateway_id: gateway.config["provider"]["port"] for gateway_id, gateway in agent.gateways.items()
            if isinstance(gateway, ProbeGateway)}


async def until(condition: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
    return value


def make_agent(tmp_path: Path, shadow: LocalShadowStore | None, file_gateways: list[dict[str, Any]] | None = None
               ) -> EdgeAgent:
    config = parse_config({"edge": {"id": THING, "data_dir": str(tmp_path / "edge"), "cloud_config": True},
                           "uplink": {"type": "inprocess"}, "gateways": file_gateways or []}, base_dir=tmp_path)
    PUBLISHED.clear()
    agent = EdgeAgent(config, publish_handler=PUBLISHED.append)
    uplink = agent.uplink
    assert isinstance(uplink, InProcessUplink)
    if shadow is not None:
        uplink.topic_handler = shadow.device_publish
        shadow.attach_device(THING, lambda topic, payload: uplink.deliver_downlink(payload, topic))
    return agent


def run(tmp_path: Path, shadow: LocalShadowStore | None, scenario: Callable[[EdgeAgent], Awaitable[None]],
        file_gateways: list[dict[str, Any]] | None = None) -> None:
    async def main() -> None:
        agent = make_agent(tmp_path, shadow, file_gateways)
        await agent.start()
        try:
            await scenario(agent)
        finally:
            await agent.stop()

    asyncio.run(main())


def desired(gateways: dict[str, Any], version: str) -> dict[str, Any]:
    return {"configVersion": version, "gateways": gateways}


def reported(shadow: LocalShadowStore) -> dict[str, Any]:
    return (shadow.get(THING) or {}).get("reported") or {}


def test_gateways_follow_the_shadow_and_only_changed_ones_restart(tmp_path: Path) -> None:
    shadow = LocalShadowStore()
    documents: list[dict[str, Any]] = []
    shadow.on_documents(lambda thing, message: documents.append(message))
    shadow.update_desired(THING, desired({"a": probe(1), "b": probe(2, enabled=False)}, "v1"))

    async def scenario(agent: EdgeAgent) -> None:
        await until(lambda: running(agent) == {"a": 1}, "gateway a from the shadow on start")
        await until(lambda: reported(shadow).get("configVersion") == "v1", "the report of v1")
        applied = reported(shadow)["applied"]
        assert applied["a"] == {"status": "running", "message": "", "hash": config_hash(probe(1))}
        assert applied["b"]["status"] == "disabled"
        first_a = agent.gateways["a"]

        shadow.update_desired(THING, desired({"a": probe(1), "b": probe(3)}, "v2"))
        await until(lambda: running(agent) == {"a": 1, "b": 3}, "gateway b enabled")
        assert agent.gateways["a"] is first_a and first_a not in ProbeGateway.stopped  # untouched

        shadow.update_desired(THING, desired({"a": probe(1), "b": probe(4)}, "v3"))
        await until(lambda: running(agent) == {"a": 1, "b": 4}, "gateway b restarted with its new config")
        assert any(g.config["provider"]["port"] == 3 for g in ProbeGateway.stopped)
        assert agent.uplink.down_topics[0] == "mc/pi-1/down"  # one topic for all of the device's gateways
        assert isinstance(agent.uplink, InProcessUplink)
        agent.uplink.deliver_downlink(encode_downlinks([Downlink("b", "test_probe", "to b")]), "mc/pi-1/down")
        agent.uplink.deliver_downlink(encode_downlinks([Downlink("b", "test_probe", "not ours")]), "mc/pi-2/down")
        b = agent.gateways["b"]
        assert isinstance(b, ProbeGateway)
        await until(lambda: [d.raw for d in b.received] == ["to b"], "b's downlink, routed by the gateway it names")

        shadow.update_desired(THING, desired({"b": probe(4)}, "v4"))
        await until(lambda: running(agent) == {"b": 4}, "gateway a removed")
        assert first_a in ProbeGateway.stopped and agent.uplink.down_topics[0] == "mc/pi-1/down"
        assert isinstance(agent.uplink, InProcessUplink)
        agent.uplink.deliver_downlink(encode_downlinks([Downlink("a", "test_probe", "to a"),
                                                        Downlink("b", "test_probe", "b again")]), "mc/pi-1/down")
        await until(lambda: [d.raw for d in b.received] == ["to b", "b again"], "b's second downlink")
        assert first_a.received == []  # a runs no more: its downlink is dropped, not held
        await until(lambda: reported(shadow).get("configVersion") == "v4", "the report of v4")
        assert set(reported(shadow)["applied"]) == {"b"}  # a deleted from reported, not left behind
        status = agent.status()
        assert status["gateways"]["b"]["source"] == "cloud" and status["cloud_config"]["config_version"] == "v4"

    run(tmp_path, shadow, scenario)
    assert any((m["current"]["state"].get("reported") or {}).get("configVersion") == "v4" for m in documents)


def test_a_bad_config_is_rejected_and_the_running_gateway_keeps_running(tmp_path: Path) -> None:
    shadow = LocalShadowStore()
    shadow.update_desired(THING, desired({"a": probe(1)}, "v1"))

    async def scenario(agent: EdgeAgent) -> None:
        await until(lambda: running(agent) == {"a": 1}, "gateway a")
        first_a = agent.gateways["a"]
        bad = {"a": {"enabled": True, "provider": {"protocol": {"type": "serial"}}},  # no type, no portname
               "b": {"provider": {"type": "no_such_plugin"}},
               "c": {"provider": {"type": "test_probe", "refuse": True}}}
        shadow.update_desired(THING, desired(bad, "v2"))
        await until(lambda: reported(shadow).get("configVersion") == "v2", "the report of v2")
        applied = reported(shadow)["applied"]
        assert applied["a"]["status"] == "rejected" and "provider.type" in applied["a"]["message"]
        assert "previous config keeps running" in applied["a"]["message"]
        assert applied["b"]["status"] == "rejected" and "no_such_plugin" in applied["b"]["message"]
        assert applied["c"]["status"] == "rejected" and "refuses" in applied["c"]["message"]
        assert agent.gateways["a"] is first_a and first_a not in ProbeGateway.stopped
        assert running(agent) == {"a": 1}
        assert "cloud config rejected" in agent.status()["gateways"]["a"]["error"]

        shadow.update_desired(THING, desired({"a": probe(1)}, "v3"))  # back to the config that runs: no restart
        await until(lambda: reported(shadow).get("configVersion") == "v3", "the report of v3")
        assert reported(shadow)["applied"] == {"a": {"status": "running", "message": "", "hash": config_hash(probe(1))}}
        assert agent.gateways["a"] is first_a and "error" not in agent.status()["gateways"]["a"]
        states = await until(lambda: len(gateway_states("a")) == 2 and gateway_states("a"), "the state again")
        assert all('"status":"up"' in raw for raw in states)  # up, and up again after the rejection ended

    run(tmp_path, shadow, scenario)


def test_the_applied_config_is_kept_on_disk_and_runs_without_the_cloud(tmp_path: Path) -> None:
    shadow = LocalShadowStore()
    secret = {"enabled": True, "provider": {"type": "test_probe", "port": 7, "password": "pw"}}
    shadow.update_desired(THING, desired({"a": secret}, "v1"))

    async def online(agent: EdgeAgent) -> None:
        await until(lambda: running(agent) == {"a": 7}, "gateway a")
        await until(lambda: (tmp_path / "edge" / "cloud_config.json").exists(), "the saved config")

    run(tmp_path, shadow, online)
    saved = tmp_path / "edge" / "cloud_config.json"
    assert json.loads(saved.read_text())["gateways"]["a"] == secret
    assert saved.stat().st_mode & 0o777 == 0o600

    async def offline(agent: EdgeAgent) -> None:
        await until(lambda: running(agent) == {"a": 7}, "gateway a from the saved config")
        assert "pw" not in json.dumps(agent.status())

    run(tmp_path, None, offline)  # no shadow service at all: publishes to it fail, the gateway runs anyway


def test_the_files_gateways_win_over_the_clouds(tmp_path: Path) -> None:
    shadow = LocalShadowStore()
    shadow.update_desired(THING, desired({"a": probe(9), "b": probe(2)}, "v1"))

    async def scenario(agent: EdgeAgent) -> None:
        await until(lambda: running(agent) == {"a": 1, "b": 2}, "the file's a and the cloud's b")
        await until(lambda: reported(shadow).get("configVersion") == "v1", "the report")
        assert reported(shadow)["applied"]["a"]["status"] == "file"

    run(tmp_path, shadow, scenario, file_gateways=[{"id": "a", **probe(1)}])


def test_cloud_config_settings_are_checked(tmp_path: Path) -> None:
    config = parse_config({"edge": {"id": THING, "cloud_config": True, "shadow_name": ""}}, base_dir=tmp_path)
    assert config.edge.cloud_config and config.edge.shadow_name == ""
    assert parse_config({"edge": {"id": THING}}).edge.shadow_name == "mycontroller"
    with pytest.raises(EdgeConfigError, match=r"edge\.shadow_name"):
        parse_config({"edge": {"id": THING, "shadow_name": "a/b"}})
    agent = make_agent(tmp_path, None)
    try:
        assert "$aws/things/pi-1/shadow/name/mycontroller/update/delta" in agent.uplink.down_topics
    finally:
        agent.spool.close()


def test_a_report_on_its_way_is_not_sent_again_by_the_shadow_loop(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_agent(tmp_path, None)
    sent: list[tuple[str, bytes]] = []
    release = asyncio.Event()

    async def slow_publish(topic: str, payload: bytes) -> None:
        sent.append((topic, payload))
        await release.wait()

    monkeypatch.setattr(agent.uplink, "publish_to", slow_publish)
    shadow = agent.shadow
    assert shadow is not None
    body = shadow.prepare_report("v1", {"a": {"status": "running", "message": "", "hash": "h"}})
    assert body is not None and shadow.pending_report is body

    async def main() -> None:
        first = asyncio.create_task(agent._send_report(body))
        await until(lambda: sent, "the first publish")
        # what the shadow loop does meanwhile: returns at once (a second publish would wait for the release)
        await asyncio.wait_for(agent._send_report(body), 2)
        release.set()
        await first

    asyncio.run(main())
    assert len(sent) == 1 and sent[0][0] == shadow.topic("update")
    assert shadow.pending_report is None  # sent: nothing left to resend

"""Gateway resources and edge devices' shadows kept in step, and gateway secrets kept out of what is shown.

* After an upsert or delete of a gateway with ``edgeId``, the desired state of the edge(s) concerned is
  computed again from the repository (all of that edge's gateways but those it runs from its own file,
  ``cloudConfig: false``) and written to its shadow. Computing it
  whole, rather than patching one gateway, makes the write idempotent and lets a retry repair anything.
* The edge's reported state arrives as the shadow's ``update/documents`` message (an IoT rule feeds it to the
  ``shadow_reported`` function in AWS; the local shadow calls ``on_documents`` directly) and is written into
  the gateway resources (``others.edge``), with ``updated`` events like any other change. The processor writes
  the same records (state, last transaction): each write is conditional on the version read and made again on a
  newer record, so neither writer undoes the other.
* Gateway configs may hold secrets (an MQTT broker's password). They are stored, and sent to the edge in its
  shadow, but every API answer and bus event carries ``REDACTED`` instead; an upsert that sends the
  placeholder back keeps the stored secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mycontroller_protocol.shadow import (
    ShadowError,
    config_hash,
    desired_document,
    gateway_config,
    reported_of_documents,
    reported_update,
    restore_secrets,
)

from ..core.conflicts import update, write_changes
from ..core.model import EventType, Kind, Record, event, now_iso
from ..core.ports import BusEvent, EventBus, Filter, ListQuery, Repository, ShadowStore, bus_event
from ..core.secrecy import public
from .errors import DependencyFailed, InvalidInput

log = logging.getLogger(__name__)


def restore(kind: Kind, body: dict[str, Any], stored: Record | None) -> dict[str, Any]:
    """The upsert body with placeholders replaced by the stored secrets; ``InvalidInput`` naming the key if none
    is stored."""
    if kind != Kind.GATEWAY or not isinstance(body.get("provider"), Mapping):
        return body
    try:
        provider = restore_secrets(body["provider"], (stored or {}).get("provider"))
    except ShadowError as error:
        raise InvalidInput(str(error), str(error).split(":", 1)[0]) from None
    return {**body, "provider": provider}


class GatewaySync:
    """Gateways ⇄ their edges' shadows. ``shadow`` is looked up at each sync (``None``: edges are not reached)."""

    def __init__(self, repository: Repository, bus: EventBus, shadow: Callable[[], ShadowStore | None],
                 forget_owners: Callable[[Iterable[str]], None] | None = None) -> None:
        self.repository = repository
        self.bus = bus
        self.shadow = shadow
        self.forget_owners = forget_owners
        """Told the gateways whose owning edge may have changed (this process's ``GatewayOwners`` forgets them)."""

    def edge_gateways(self, thing: str) -> list[Record]:
        """The gateways whose config the cloud sends to this edge: its own, except those it runs from its file
        (``cloudConfig: false``, bound to it by their first message), which the shadow must not start elsewhere."""
        query = ListQuery(filters=[Filter("edgeId", "eq", thing)], limit=0)
        return [record for record in self.repository.query(Kind.GATEWAY, query).data
                if record.get("cloudConfig", True) is not False]

    def sync_things(self, things: Iterable[str | None]) -> None:
        """Write the desired state of these edges from the repository; ``DependencyFailed`` naming ``shadow`` if it
        failed (the resources are saved: the same call again, or any later change of that edge's gateways,
        repairs it)."""
        store = self.shadow()
        if store is None:
            return
        failures: list[str] = []
        for thing in sorted({t for t in things if t}):  # every edge is tried: one failing does not hold back another
            try:
                store.update_desired(thing, desired_document(self.edge_gateways(thing)))
            except ShadowError as error:
                failures.append(f"edge {thing!r}: {error}")
            except Exception as error:  # the shadow service is another service: a failure of it is its failure
                log.exception("shadow update of %s failed", thing)
                failures.append(f"edge {thing!r} could not be updated ({type(error).__name__}: {error})")
        if failures:
            raise DependencyFailed("shadow: the gateway was saved but not sent to its edge device: "
                                   + "; ".join(failures), "shadow")

    def after_upsert(self, kind: Kind, record: Record, stored: Record | None) -> None:
        if kind == Kind.GATEWAY:
            if self.forget_owners is not None and record.get("edgeId") != (stored or {}).get("edgeId"):
                self.forget_owners([str(record["id"])])
            self.sync_things({record.get("edgeId"), (stored or {}).get("edgeId")})

    def set_enabled(self, gateways: Iterable[Record], enabled: bool) -> list[Record]:
        """Enable or disable gateways (MyController v2's ``/api/gateway/enable|disable``): stored, announced, and
        sent to their edges, whose agents start or stop them. The records changed (those already so are not)."""
        return self._store([(record, {**record, "enabled": enabled, "modifiedOn": now_iso()})
                            for record in gateways if record.get("enabled", True) is not enabled])

    def reload(self, gateways: Iterable[Record]) -> list[Record]:
        """Restart gateways on their edges (``/api/gateway/reload``): ``others.reloadedOn`` is part of the config an
        edge runs (``core.shadow.gateway_config``), so a new value makes its agent restart the gateway."""
        return self._store([(record, {**record, "others": {**(record.get("others") or {}), "reloadedOn": now_iso()},
                                      "modifiedOn": now_iso()}) for record in gateways])

    def _store(self, changes: list[tuple[Record, Record]]) -> list[Record]:
        """Write ``(read, changed)`` pairs on the versions read (a concurrent change of other keys is kept),
        announce them and bring their edges in step."""
        if not changes:
            return []
        written = write_changes(self.repository, Kind.GATEWAY, changes)
        records = [written.records.get(str(ours["id"]), ours) for _, ours in changes]
        self.bus.publish([bus_event(event(EventType.UPDATED, Kind.GATEWAY, public(Kind.GATEWAY, r))) for r in records])
        self.sync_things({record.get("edgeId") for record in records})
        return records

    def after_delete(self, deleted: Iterable[tuple[Kind, Record]]) -> None:
        gateways = [record for kind, record in deleted if kind == Kind.GATEWAY]
        if self.forget_owners is not None and gateways:
            self.forget_owners([str(record["id"]) for record in gateways])
        self.sync_things({record.get("edgeId") for record in gateways})

    def on_documents(self, thing: str | None, message: Mapping[str, Any]) -> list[Record]:
        """Write what an edge reported into its gateway resources; the records changed (announced as ``updated``).

        Messages whose reported section did not change (the cloud's own desired updates) cost one comparison.
        """
        if not thing or not isinstance(message, Mapping):
            return []
        reported = reported_of_documents(message)
        if reported is None:
            return []
        changed: list[Record] = []

        def report(current: Record | None) -> Record | None:
            """The report on the gateway as stored now: a batch's state or an API edit written meanwhile stays
            (the write is conditional on the version read, and made again on a newer one)."""
            if current is None or current.get("edgeId") != thing or current.get("cloudConfig", True) is False:
                return None
            return reported_update(current, reported, thing, config_hash(gateway_config(current)))

        for record in self.edge_gateways(thing):
            updated = update(self.repository, Kind.GATEWAY, str(record["id"]), report)
            if updated is not None:
                changed.append(updated)
        if changed:
            events: list[BusEvent] = [bus_event(event(EventType.UPDATED, Kind.GATEWAY, public(Kind.GATEWAY, r)))
                                      for r in changed]
            self.bus.publish(events)
        return changed

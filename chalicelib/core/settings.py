"""System settings, in MyController v2's shape (``system_settings``): location, login message, language and the
system jobs' timing, and (ours) the hosts and networks outbound requests may reach (``outbound.allow``). One record
(kind ``settings``, id ``system_settings``) in the repository.

Pure: the model, and reading it through the repository port. The location feeds sun schedules and the
``sunrise``/``sunset`` template functions; ``nodeStateJob`` the node state job; ``nodeDiscoverJob`` (ours: the
reference discovers only on request) the periodic MySensors discover broadcast.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, field_validator, model_validator

from .allow_list import MAX_ALLOW_ENTRIES, parse_allow
from .automation.clock import Location, parse_duration, zone
from .model import CamelModel, Kind, Record
from .ports import Repository

SETTINGS_ID: Final = "system_settings"
BACKUP_LOCATIONS_ID: Final = "system_backup_locations"
SYSTEM_JOBS_ID: Final = "system_jobs"
DOCUMENT_IDS: Final = (SETTINGS_ID, BACKUP_LOCATIONS_ID, SYSTEM_JOBS_ID)
"""MyController v2's settings documents (``{id, spec, modifiedOn}``) this server keeps; each is one ``settings``
record under its id."""
DEFAULT_NODE_STATE_INTERVAL: Final = "5m"
DEFAULT_INACTIVE_DURATION: Final = "15m"
DEFAULT_DISCOVER_INTERVAL: Final = "1h"


def _duration(value: str, what: str) -> str:
    if parse_duration(value).total_seconds() <= 0:
        raise ValueError(f"{what} must be longer than zero, got {value!r}")
    return value


class GeoLocation(CamelModel):
    """Where the installation is; ``timezone`` (ours) is the zone schedules without their own run in."""

    latitude: float | None = Field(default=None, ge=-90.0, le=90.0)
    longitude: float | None = Field(default=None, ge=-180.0, le=180.0)
    location_name: str = Field(default="", max_length=200)
    timezone: str = "UTC"
    elevation: float = Field(default=0.0, ge=-500.0, le=9000.0)
    auto_update: bool = False
    """The reference's flag (locate by IP); accepted and kept, not acted on (no internet is assumed)."""

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value or "UTC")
        return value or "UTC"

    @model_validator(mode="after")
    def _both(self) -> GeoLocation:
        if (self.latitude is None) != (self.longitude is None):
            missing = "latitude" if self.latitude is None else "longitude"
            raise ValueError(f"{missing} is required when the other coordinate is given")
        return self


class NodeStateJob(CamelModel):
    execution_interval: str = DEFAULT_NODE_STATE_INTERVAL
    inactive_duration: str = DEFAULT_INACTIVE_DURATION
    """The default for nodes without an ``inactive_duration`` label."""

    @field_validator("execution_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return _duration(value, "executionInterval")

    @field_validator("inactive_duration")
    @classmethod
    def _inactive(cls, value: str) -> str:
        return _duration(value, "inactiveDuration")


class NodeDiscoverJob(CamelModel):
    enabled: bool = True
    execution_interval: str = DEFAULT_DISCOVER_INTERVAL

    @field_validator("execution_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return _duration(value, "executionInterval")


class Login(CamelModel):
    """``message`` on the login page; other keys (the reference's ``serverMessage``) are kept as sent."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    message: str = Field(default="", max_length=2000)


class Outbound(CamelModel):
    """Where handlers and webhook variables may connect besides the open internet (``core/outbound.py``)."""

    allow: list[str] = Field(default_factory=list, max_length=MAX_ALLOW_ENTRIES)
    """Host names (``nas.local``, ``*.lan``) and addresses or networks (``127.0.0.1``, ``192.168.1.0/24``)."""

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        entries = [str(entry).strip() for entry in value]
        for index, entry in enumerate(entries):
            try:
                parse_allow([entry])
            except ValueError as error:
                raise ValueError(f"entry {index}: {error}") from None
        return list(dict.fromkeys(entries))


class SystemSettings(CamelModel):
    geo_location: GeoLocation = Field(default_factory=GeoLocation)
    login: Login = Field(default_factory=Login)
    language: str = Field(default="en-us", min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$")
    node_state_job: NodeStateJob = Field(default_factory=NodeStateJob)
    node_discover_job: NodeDiscoverJob = Field(default_factory=NodeDiscoverJob)
    outbound: Outbound = Field(default_factory=Outbound)
    modified_on: str | None = None

    def location(self) -> Location | None:
        """The ``clock.Location`` of ``geoLocation``, or ``None`` until coordinates are set."""
        geo = self.geo_location
        if geo.latitude is None or geo.longitude is None:
            return None
        return Location(geo.latitude, geo.longitude, geo.location_name, geo.timezone, geo.elevation)

    def inactive_ms(self) -> int:
        return int(parse_duration(self.node_state_job.inactive_duration).total_seconds() * 1000)

    def record(self) -> Record:
        return {"id": SETTINGS_ID, **self.model_dump(mode="json")}


def load_settings(repository: Repository) -> SystemSettings:
    """The stored settings, or the defaults when none are stored (or the stored record no longer validates)."""
    record = repository.get(Kind.SETTINGS, SETTINGS_ID)
    if record is None:
        return SystemSettings()
    try:
        return SystemSettings.model_validate({k: v for k, v in record.items() if k != "id"})
    except ValueError:
        return SystemSettings()


class BackupLocationConfig(CamelModel):
    model_config = {**CamelModel.model_config, "extra": "allow"}

    target_directory: str = Field(default="", max_length=1024)


class BackupLocation(CamelModel):
    """A place the reference's backup handler copied archives to; kept for its console (our backups live in the
    blob store whatever the location says)."""

    name: str = Field(min_length=1, max_length=128)
    type: str = Field(default="disk", max_length=32)
    config: BackupLocationConfig = Field(default_factory=BackupLocationConfig)


class BackupLocations(CamelModel):
    locations: list[BackupLocation] | None = Field(default=None, max_length=100)


class SystemJobs(CamelModel):
    """The reference's ``system_jobs``: ``sunrise`` is the cron of its daily sun re-arm (ours runs daily)."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    sunrise: str = Field(default="0 15 1 * * *", max_length=128)


DOCUMENT_MODELS: Final[dict[str, type[CamelModel]]] = {
    SETTINGS_ID: SystemSettings, BACKUP_LOCATIONS_ID: BackupLocations, SYSTEM_JOBS_ID: SystemJobs,
}

"""Config section ``device``: who this device is (its id, one MQTT topic level) and where it is."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import TOPIC_ID_PATTERN, Section


class LocationConfig(Section):
    name: str | None = Field(
        None, max_length=200, description="Free-text place name, e.g. 'North gate, camera 2'."
    )
    lat: float | None = Field(None, ge=-90.0, le=90.0, description="Latitude, WGS 84 degrees.")
    lon: float | None = Field(None, ge=-180.0, le=180.0, description="Longitude, WGS 84 degrees.")

    @model_validator(mode="after")
    def _lat_lon_together(self) -> LocationConfig:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if self.name is None and self.lat is None:
            raise ValueError("give a name, or lat and lon, or both")
        return self


class DeviceConfig(Section):
    id: str = Field(
        "edge-0",
        pattern=TOPIC_ID_PATTERN,
        description="Device id: one MQTT topic level (letters, digits, '.', '_', '-'; at most 64) "
        "and the 'device_id' of every alert. Must be unique per broker.",
    )
    location: LocationConfig | None = Field(
        None, description="Fixed location copied into every alert; omit for a moving device."
    )

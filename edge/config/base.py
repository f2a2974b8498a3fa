"""The base of every config section, and the one pattern for ids that become a topic level."""

from pydantic import BaseModel, ConfigDict

# Device and watchlist ids each become one MQTT topic level (and a file name), so they must not
# hold '/', '+', '#', spaces or a leading dot.
TOPIC_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Section(BaseModel):
    """Base for every config section: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

"""The base of every config section; its own module so that each area's sections can subclass it
without importing the config root (which imports them)."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base for every config section: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

"""Typed private_metadata and button values: parsed, never trusted blindly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RejectMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    change_id: str = Field(pattern=r"^CR-\d{4}-\d{4,}$")
    channel: str | None = None
    phase: str = "pre"  # "post": refusing an emergency's post-approval


class ProgressMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    change_id: str = Field(pattern=r"^CR-\d{4}-\d{4,}$")
    action: str
    channel: str | None = None


class RescheduleMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    change_id: str = Field(pattern=r"^CR-\d{4}-\d{4,}$")


class EditMetadata(BaseModel):
    """The change an edit form saves to, and the overlaps its requester has been shown."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    change_id: str = Field(pattern=r"^CR-\d{4}-\d{4,}$")
    acknowledged: tuple[str, ...] = ()

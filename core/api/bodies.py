"""Request bodies of the API (API.md), validated strictly: wrong types are a 400, not a silent conversion."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class _Body(BaseModel):
    # Strict: "yes" is not true and "75" is not a number; extra fields are tolerated (tolerant reader).
    model_config = ConfigDict(strict=True, extra="ignore")


class Credentials(_Body):
    clientId: StrictStr = Field(min_length=1, max_length=256)
    clientSecret: StrictStr = Field(min_length=1, max_length=256)


class FeatureChange(_Body):
    feature: StrictStr = Field(max_length=100, examples=["CaptureChargeSessions"])
    enabled: StrictBool


class BatteryCapacity(_Body):
    value: float = Field(gt=0, le=300, allow_inf_nan=False, description="Battery capacity in kWh, 0 < value <= 300.")
    unit: Literal["kWh"] = "kWh"


class Location(_Body):
    label: StrictStr = Field(min_length=1, max_length=100)
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    radius: float = Field(150, ge=10, le=5000, allow_inf_nan=False, description="Radius in metres.")

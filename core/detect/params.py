"""Detection parameters (SPEC section 3 defaults), adjustable per run."""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.settings import Settings


@dataclass(frozen=True)
class DetectParams:
    min_power_kw: float = 0.1
    max_pause_min: float = 15
    max_gap_min: float = 60
    min_energy_kwh: float = 0.05
    soc_min_rise_pct: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> DetectParams:
        values = {f.name: getattr(settings, f.name) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

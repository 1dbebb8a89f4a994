"""Session detection: readings in, charge sessions out (pure polars, no I/O, no clock)."""

from __future__ import annotations

from core.detect.params import DetectParams
from core.detect.power import detect_sessions

__all__ = ["DetectParams", "detect_sessions"]

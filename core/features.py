"""Entity features and the one compatibility check for CaptureChargeSessions (API, CLI and UI share it)."""

from __future__ import annotations

from core.errors import FeatureRefused

CAPTURE = "CaptureChargeSessions"
FEATURES = (CAPTURE,)


def capture_refusal(
    entity_id: str, entity_type: str, *, has_power: bool, has_meter: bool, has_soc: bool, capacity_kwh: float | None
) -> FeatureRefused | None:
    """Why session capture cannot be switched on for this entity, or None when it can."""
    if entity_type not in ("EV", "ChargePoint"):
        return FeatureRefused(
            f"Session capture works for EVs and charge points only; '{entity_id}' is a {entity_type}.",
            title="FeatureNotSupported",
        )
    if has_power or has_meter:
        return None
    if has_soc:
        if entity_type == "EV" and capacity_kwh:
            return None
        return FeatureRefused(
            f"'{entity_id}' reports only its state of charge, so sessions need its battery capacity; "
            "set the battery capacity (kWh) first, then switch session capture on.",
            title="BatteryCapacityRequired",
        )
    return FeatureRefused(
        f"'{entity_id}' has no charging power, energy meter or state of charge in its readings, so no sessions can "
        "be computed; import readings with one of these first.",
        title="FeatureNotAvailable",
    )


def check_feature_name(feature: str) -> None:
    if feature not in FEATURES:
        raise FeatureRefused(f"Unknown feature '{feature}'; the known feature is {CAPTURE}.", title="UnknownFeature")

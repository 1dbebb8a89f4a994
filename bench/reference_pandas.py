"""Reference: the power method's session rules written as plain pandas (groupby, shift, cumsum), for the benchmark.

It mirrors core/detect/power.py and the completeness rule of core/detect/engine.py for readings that carry only
power (no meter, counter, SoC, unplug or position), so that its sessions and energy can be compared with ChargeLens:
- per entity, in time order, a reading with power_kw >= min_power_kw is charging;
- a pause runs from the first reading without charging to the next charging reading; a pause longer than
  max_pause_min opens a new session, a shorter or equal one stays inside; charging readings with nothing in
  between are not a pause, however far apart (their interval is then simply not integrated, see below);
- energy is the trapezoid integral over the intervals between consecutive readings that have a charging end, so
  the interval before the first and after the last charging reading count with the non-charging reading's power
  (half the interval at 0 kW); an interval longer than max_gap_min is never integrated;
- a session is listed once the entity's data goes on for at least max_pause_min after its last charging reading
  (the ongoing session at the end of the data is not listed), and when it has at least min_energy_kwh.
Readings are assumed unique per entity and instant, as the store keeps them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def detect_power_sessions(
    readings: pd.DataFrame,
    min_power_kw: float = 0.1,
    max_pause_min: float = 15,
    max_gap_min: float = 60,
    min_energy_kwh: float = 0.05,
) -> pd.DataFrame:
    """Complete power sessions: one row per session with entity_id, start_utc, end_utc and energy_kwh."""
    df = readings.loc[readings["power_kw"].notna(), ["entity_id", "ts", "power_kw"]]
    df = df.sort_values(["entity_id", "ts"], kind="stable").reset_index(drop=True)
    entity = pd.Series(pd.factorize(df["entity_id"])[0], index=df.index)  # group key, cheaper than the strings

    def by(column: pd.Series):
        return column.groupby(entity, sort=False)

    charging = df["power_kw"] >= min_power_kw
    # The entity's first reading counts as following a charging one: a run without charging starts there.
    prev_charging = by(charging).shift(1, fill_value=True)
    # Start of the current run without charging, carried forward to the charging reading that ends it.
    off_start = by(df["ts"].where(~charging & prev_charging)).ffill()
    pause = (df["ts"] - off_start).where(~prev_charging, pd.Timedelta(0))
    charged_before = by(charging.astype(np.int64)).cumsum() - charging > 0
    new = charging & (~charged_before | (pause > pd.Timedelta(minutes=max_pause_min)))
    session = new.cumsum().where(charging)  # numbered across entities: unique on its own
    # Each interval to the next reading belongs to the session of its charging end, if any.
    next_ts = by(df["ts"]).shift(-1)
    next_power = by(df["power_kw"]).shift(-1)
    owner = session.fillna(by(session).shift(-1))
    dt_s = (next_ts - df["ts"]).dt.total_seconds()
    integrated = owner.notna() & (dt_s <= max_gap_min * 60)
    trapezoid = (df["power_kw"].clip(lower=0) + next_power.clip(lower=0)) / 2 * dt_s / 3600
    energy = pd.Series(np.where(integrated, trapezoid, 0.0), index=df.index).groupby(owner).sum()
    last_ts = df.groupby("entity_id", sort=False)["ts"].max()
    sessions = (
        df[charging]
        .groupby(session[charging])
        .agg(entity_id=("entity_id", "first"), start_utc=("ts", "min"), end_utc=("ts", "max"))
        .join(energy.rename("energy_kwh"))
    )
    idle = sessions["entity_id"].map(last_ts) - sessions["end_utc"]
    listed = sessions[(idle >= pd.Timedelta(minutes=max_pause_min)) & (sessions["energy_kwh"] >= min_energy_kwh)]
    return listed.reset_index(drop=True)[["entity_id", "start_utc", "end_utc", "energy_kwh"]]

-- Reference: the power method's session rules as DuckDB window queries (gaps and islands with running sums).
-- Same rules as bench/reference_pandas.py (which explains them); mirrors core/detect/power.py for power-only data.
-- Parameters: $path, $min_power_kw, $max_pause_us, $max_gap_us, $min_energy_kwh.
WITH r AS (
    SELECT entity_id, epoch_us(ts) AS t, power_kw, power_kw >= $min_power_kw AS charging
    FROM read_parquet($path)
    WHERE power_kw IS NOT NULL
),
w AS (
    SELECT
        *,
        -- The entity's first reading counts as following a charging one: a run without charging starts there.
        coalesce(lag(charging) OVER e, true) AS prev_charging,
        lead(t) OVER e AS next_t,
        lead(power_kw) OVER e AS next_power,
        coalesce(sum(charging::INTEGER) OVER (e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS charged_before,
        max(t) OVER (PARTITION BY entity_id) AS last_t
    FROM r
    WINDOW e AS (PARTITION BY entity_id ORDER BY t)
),
runs AS (
    -- Start of the current run without charging, carried forward to the charging reading that ends it.
    SELECT
        *,
        last_value(CASE WHEN NOT charging AND prev_charging THEN t END IGNORE NULLS)
            OVER (PARTITION BY entity_id ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS off_start
    FROM w
),
islands AS (
    SELECT
        *,
        sum((charging AND (charged_before = 0 OR (NOT prev_charging AND t - off_start > $max_pause_us)))::INTEGER)
            OVER (PARTITION BY entity_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS run_no
    FROM runs
),
owned AS (
    -- Each interval to the next reading belongs to the session of its charging end, if any.
    SELECT
        entity_id, t, charging, last_t,
        CASE WHEN charging THEN run_no WHEN lead(charging) OVER e THEN lead(run_no) OVER e END AS session,
        CASE
            WHEN next_t - t <= $max_gap_us
            THEN (greatest(power_kw, 0) + greatest(next_power, 0)) / 2 * ((next_t - t) / 1e6) / 3600
            ELSE 0
        END AS energy
    FROM islands
    WINDOW e AS (PARTITION BY entity_id ORDER BY t)
),
sessions AS (
    SELECT
        entity_id,
        min(t) FILTER (WHERE charging) AS start_us,
        max(t) FILTER (WHERE charging) AS end_us,
        sum(energy) AS energy_kwh,
        any_value(last_t) AS last_t
    FROM owned
    WHERE session IS NOT NULL
    GROUP BY entity_id, session
)
SELECT entity_id, make_timestamp(start_us) AS start_utc, make_timestamp(end_us) AS end_utc, energy_kwh
FROM sessions
WHERE last_t - end_us >= $max_pause_us AND energy_kwh >= $min_energy_kwh
ORDER BY entity_id, start_us

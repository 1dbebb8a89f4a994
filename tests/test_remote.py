"""core.remote and the `remote` commands against the fake platform served on a real loopback port."""

from __future__ import annotations

import io
import json
import stat
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core import cli, remote
from core.features import CAPTURE
from core.ids import session_id
from core.platform import remote_secret_file
from core.schema import SESSIONS_SCHEMA, conform
from core.store import Store
from tests.conftest import assert_no_traceback
from tests.fake_platform import CLIENT_ID, CLIENT_SECRET, T0, FakePlatform, fleet_platform, fresh, serving

EV, CP, BATTERY = "ev-a", "cp-b", "battery-9"
DAY1, DAY3 = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def platform():
    yield from serving(fleet_platform())


@pytest.fixture
def fake(platform: FakePlatform) -> FakePlatform:
    return fresh(platform)


@pytest.fixture
def connected(store: Store, fake: FakePlatform) -> Store:
    assert remote.connect(store, fake.url, CLIENT_ID, CLIENT_SECRET) == 3
    return store


@pytest.fixture
def client(connected: Store):
    with remote.open_client(connected, sleep=lambda s: None, page_size=25) as c:
        yield c


def pulled(result) -> list[tuple]:
    return [(e.entity_id, e.summary.stored, e.summary.duplicate, e.error) for e in result.entities]


def run_cli(db_path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The CLI in this process (fast); the subprocess test below covers the real entry point."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = cli.main(["--db", str(db_path), *args])
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


# -- connect --------------------------------------------------------------------------------------------------
def test_connect_keeps_url_and_client_id_as_settings_and_the_secret_in_a_0600_file(store, fake, db_path):
    assert remote.connect(store, fake.url + "/", CLIENT_ID, CLIENT_SECRET) == 3
    assert remote.connection(store) == remote.Connection(fake.url, CLIENT_ID, True)
    secret_file = remote_secret_file(db_path)
    assert secret_file.name == "chargelens.remote-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text() == CLIENT_SECRET + "\n"
    assert CLIENT_SECRET not in json.dumps(store.stored_settings())
    store.cursor().execute("CHECKPOINT")
    for path in db_path.parent.iterdir():
        if path != secret_file:
            assert CLIENT_SECRET.encode() not in path.read_bytes(), path.name
    assert [(s.method, s.raw_path) for s in fake.seen] == [
        ("POST", "/api/v1/authentication"),
        ("GET", "/api/v1/entities"),
    ]


def test_wrong_secret_is_refused_clearly_and_nothing_is_stored(store, fake, db_path):
    with pytest.raises(remote.RemoteError) as caught:
        remote.connect(store, fake.url, CLIENT_ID, "not-the-secret")
    assert caught.value.detail == (
        f"Connecting to {fake.url} failed: the remote platform answered 401 Unauthorized: Unknown client id or secret."
    )
    assert store.stored_settings() == {}
    assert not remote_secret_file(db_path).exists()
    assert remote.connection(store).connected is False
    with pytest.raises(remote.NotConnected, match=r"run `remote connect --url URL --client-id ID`"):
        remote.open_client(store)


# -- pulling readings -----------------------------------------------------------------------------------------
def test_pull_creates_the_remote_entities_and_a_second_pull_stores_nothing_new(connected, client):
    first = remote.pull(connected, client, start=DAY1, end=DAY3)
    assert pulled(first) == [(BATTERY, 0, 0, None), (CP, 192, 0, None), (EV, 288, 0, None)]
    entities = connected.frame("SELECT entity_id, entity_type, name FROM entities ORDER BY 1").rows()
    assert entities == [(BATTERY, "Battery", "Store"), (CP, "ChargePoint", "Depot B"), (EV, "EV", "Van A")]
    second = remote.pull(connected, client, start=DAY1, end=DAY3)
    assert pulled(second) == [(BATTERY, 0, 0, None), (CP, 0, 192, None), (EV, 0, 288, None)]
    counts = connected.frame(
        "SELECT entity_id, count(*), count(DISTINCT ts), min(ts), max(ts) FROM readings GROUP BY 1 ORDER BY 1"
    ).rows()
    assert counts == [(CP, 192, 192, T0, at("2025-03-02T23:45")), (EV, 288, 288, T0, at("2025-03-02T23:50"))]
    assert connected.scalar("SELECT count(*) FROM imports WHERE format = 'remote'") == 4
    # Pulled readings are an import like any other: sessions are detected from them.
    detected = connected.frame("SELECT entity_id, start_utc FROM sessions WHERE source = 'detected' ORDER BY 1, 2")
    assert detected.filter(pl.col("entity_id") == EV).get_column("start_utc").to_list() == [
        at("2025-03-01T18:00"),
        at("2025-03-02T02:00"),
    ]


def test_since_last_resumes_after_a_pull_broken_midway_by_a_persistent_500(connected, client, fake):
    fake.faults.broken_entity = EV
    fake.faults.broken_after = 2  # two pages of 25 come through, then every request about ev-a fails
    broken = remote.pull(connected, client, start=DAY1, end=DAY3, chunk_size=50)
    assert pulled(broken)[:2] == [(BATTERY, 0, 0, None), (CP, 192, 0, None)]
    assert (broken.entities[2].entity_id, broken.entities[2].summary.stored) == (EV, 50)
    assert broken.entities[2].error == (
        "Pulling 'ev-a' failed: the remote platform answered 500 InternalError: The platform failed; it was logged."
    )
    last_kept = T0 + timedelta(minutes=10 * 49)
    assert connected.frame("SELECT last_ts, error IS NOT NULL FROM remote_pulls WHERE entity_id = ?", [EV]).rows() == [
        (last_kept, True)
    ]
    assert connected.scalar("SELECT count(*) FROM readings WHERE entity_id = ?", [EV]) == 50

    fake.reset()
    resumed = remote.pull(connected, client, since_last=True, chunk_size=50)
    assert pulled(resumed) == [(BATTERY, 0, 0, None), (CP, 0, 0, None), (EV, 238, 0, None)]
    first_request = next(s for s in fake.seen if s.raw_path.endswith("/ev-a/readings"))
    assert parse_qs(first_request.query)["start"] == ["2025-03-01T08:10:00Z"]  # where the broken pull stopped
    assert "end" not in parse_qs(first_request.query)
    rows = connected.frame("SELECT entity_id, count(*), count(DISTINCT ts) FROM readings GROUP BY 1 ORDER BY 1")
    assert rows.rows() == [(CP, 192, 192), (EV, 288, 288)]
    assert connected.scalar("SELECT count(*) FROM remote_pulls WHERE error IS NOT NULL") == 0


def test_since_last_before_any_pull_says_what_to_do(connected, client):
    with pytest.raises(remote.InputError, match=r"run `remote pull --start ISO --end ISO` first"):
        remote.pull(connected, client, since_last=True)


def test_an_unknown_remote_entity_is_refused_before_anything_is_pulled(connected, client):
    with pytest.raises(remote.InputError, match=r"no entity 'ev-z'; list them with `remote entities`"):
        remote.pull(connected, client, start=DAY1, end=DAY3, entity_ids=["ev-z"])
    assert connected.is_empty()


# -- platform sessions ----------------------------------------------------------------------------------------
def test_platform_sessions_are_stored_with_source_platform_and_deterministic_ids(connected, client):
    first = remote.pull_sessions(connected, client, start=DAY1, end=DAY3)
    assert pulled(first) == [(BATTERY, 0, 0, None), (CP, 2, 0, None), (EV, 2, 0, None)]
    listed = remote.platform_sessions(connected).select(
        "session_id", "entity_id", "start_utc", "end_utc", "energy_kwh", "method", "source"
    )
    expected = [
        (CP, "2025-03-01T08:00:00Z", "2025-03-01T10:00", 20.0),
        (CP, "2025-03-01T14:00:00Z", "2025-03-01T15:00", 5.0),
        (EV, "2025-03-01T18:00:00Z", "2025-03-01T20:00", 14.4),
        (EV, "2025-03-02T02:00:00Z", "2025-03-02T03:00", 11.0),
    ]
    assert listed.rows() == [
        (session_id(e, start, "platform"), e, at(start[:16]), at(end), kwh, "reported", "platform")
        for e, start, end, kwh in expected
    ]
    again = remote.pull_sessions(connected, client, start=DAY1, end=DAY3)
    assert pulled(again) == [(BATTERY, 0, 0, None), (CP, 0, 2, None), (EV, 0, 2, None)]
    remote.pull(connected, client, start=DAY1, end=DAY3)  # detection replaces detected sessions only
    assert remote.platform_sessions(connected).height == 4


def test_platform_session_objects_are_validated_with_reasons():
    good = {
        "data": {
            "start": "2025-03-01T18:04:00+01:00",
            "end": "2025-03-01T21:37:00Z",
            "plugIn": "2025-03-01T17:00:00Z",
            "charge": {
                "total": {"t1": 30.0, "t2": 6.1, "t3": 0, "t4": 0, "total": 36.1, "unit": "kWh"},
                "averagePower": {"unit": "W", "value": 10200},
                "start": {"unit": "%", "value": 31},
                "end": {"unit": "%", "value": 80},
            },
            "range": {"start": {"unit": "km", "value": 140}, "end": {"unit": "km", "value": 362}},
        }
    }
    bad = [
        {"data": {"start": "2025-03-02T10:00:00Z", "end": "2025-03-02T09:00:00Z"}},
        {"data": {"end": "2025-03-02T09:00:00Z", "charge": {"start": {"unit": "%", "value": 120}}}},
        "not an object",
    ]
    sessions, rejects = remote.platform_sessions_frame(EV, [good, *bad], "remote sessions of ev-a")
    row = sessions.row(0, named=True)
    assert sessions.height == 1
    assert row["session_id"] == session_id(EV, "2025-03-01T17:04:00Z", "platform")
    assert (row["start_utc"], row["end_utc"], row["plug_in_utc"]) == (
        at("2025-03-01T17:04"),
        at("2025-03-01T21:37"),
        at("2025-03-01T17:00"),
    )
    assert [row[k] for k in ("energy_kwh", "average_power_kw", "soc_start_pct", "soc_end_pct", "range_end_km")] == [
        36.1,
        10.2,
        31.0,
        80.0,
        362.0,
    ]
    assert (row["method"], row["source"], row["plug_out_utc"]) == ("reported", "platform", None)
    assert rejects.select("row", "column", "reason").rows() == [
        (2, "end", "the session ends before it starts"),
        (3, "start", "start is missing or not a time with a zone"),
        (3, "charge.start", "state of charge must be between 0 and 100 %"),
        (4, "start", "start is missing or not a time with a zone"),
        (4, "end", "end is missing or not a time with a zone"),
    ]


def test_remote_feature_toggle_reaches_the_platform(client, fake):
    assert remote.set_feature(client, EV, CAPTURE, False) == [{"feature": CAPTURE, "enabled": False}]
    assert fake.features == {EV: False}
    with pytest.raises(remote.RemoteError) as caught:
        remote.set_feature(client, BATTERY, CAPTURE, True)
    assert caught.value.detail == (
        "Switching CaptureChargeSessions on for 'battery-9' failed: the remote platform answered 400 "
        "FeatureNotSupported: Only EVs and charge points capture sessions."
    )


# -- reconciliation -------------------------------------------------------------------------------------------
def sessions_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"session_id": i, "entity_id": e, "start_utc": at(s), "end_utc": at(t), "energy_kwh": k}
            for i, e, s, t, k in rows
        ],
        schema={
            "session_id": pl.String,
            "entity_id": pl.String,
            "start_utc": SESSIONS_SCHEMA["start_utc"],
            "end_utc": SESSIONS_SCHEMA["end_utc"],
            "energy_kwh": pl.Float64,
        },
    )


PLATFORM_CASE = [
    ("P1", CP, "2025-03-01T08:00", "2025-03-01T10:00", 20.0),
    ("P2", CP, "2025-03-01T14:00", "2025-03-01T15:00", 5.0),
]
LOCAL_CASE = [
    ("L1", CP, "2025-03-01T08:05", "2025-03-01T10:10", 19.5),
    ("L2", CP, "2025-03-01T20:00", "2025-03-01T21:00", 7.0),
]


# The crafted case as the reconciliation shows it: differences are local minus platform (kWh, minutes).
EXPECTED_CASE = {
    "entity_id": [CP, CP, CP],
    "status": ["matched", "only_platform", "only_local"],
    "platform_session_id": ["P1", "P2", None],
    "local_session_id": ["L1", None, "L2"],
    "platform_start_utc": [at("2025-03-01T08:00"), at("2025-03-01T14:00"), None],
    "platform_end_utc": [at("2025-03-01T10:00"), at("2025-03-01T15:00"), None],
    "local_start_utc": [at("2025-03-01T08:05"), None, at("2025-03-01T20:00")],
    "local_end_utc": [at("2025-03-01T10:10"), None, at("2025-03-01T21:00")],
    "platform_energy_kwh": [20.0, 5.0, None],
    "local_energy_kwh": [19.5, None, 7.0],
    "energy_diff_kwh": [-0.5, None, None],
    "start_diff_min": [5.0, None, None],
    "end_diff_min": [10.0, None, None],
    "overlap_min": [115.0, None, None],
}


def test_reconcile_matches_by_overlap_with_differences_and_one_sided_sessions():
    result = remote.reconcile(sessions_frame(PLATFORM_CASE), sessions_frame(LOCAL_CASE))
    assert_frame_equal(result, pl.DataFrame(EXPECTED_CASE, schema=remote.RECONCILE_SCHEMA))


def test_reconcile_pairs_one_to_one_longest_overlap_first():
    platform = sessions_frame([("P1", EV, "2025-03-01T08:00", "2025-03-01T12:00", 40.0)])
    local = sessions_frame(
        [
            ("L1", EV, "2025-03-01T08:00", "2025-03-01T09:00", 10.0),
            ("L2", EV, "2025-03-01T09:30", "2025-03-01T12:00", 25.0),
        ]
    )
    result = remote.reconcile(platform, local).select("status", "platform_session_id", "local_session_id")
    assert result.rows() == [("matched", "P1", "L2"), ("only_local", None, "L1")]
    empty = remote.reconcile(sessions_frame([]), sessions_frame([]))
    assert (empty.height, empty.schema) == (0, remote.RECONCILE_SCHEMA)


def test_reconcile_command_on_stored_sessions_is_exact(connected, client, db_path):
    remote.pull_sessions(connected, client, start=DAY1, end=DAY3, entity_ids=[CP])
    local = sessions_frame([*LOCAL_CASE, ("L3", CP, "2025-03-05T08:00", "2025-03-05T09:00", 3.0)])  # L3: outside
    detected = conform(local.with_columns(method=pl.lit("meter"), source=pl.lit("detected")), SESSIONS_SCHEMA)
    with connected.transaction() as tx:
        Store.insert_sessions(tx, detected)
    ids = {
        "P1": session_id(CP, "2025-03-01T08:00:00Z", "platform"),
        "P2": session_id(CP, "2025-03-01T14:00:00Z", "platform"),
    }
    expected = pl.DataFrame(EXPECTED_CASE, schema=remote.RECONCILE_SCHEMA).with_columns(
        pl.col("platform_session_id").replace(ids)
    )
    assert_frame_equal(remote.reconciliation(connected), expected)
    code, out, err = run_cli(connected.path, "remote", "reconcile", "--json")
    assert (code, err) == (0, "")
    records = json.loads(out)["data"]
    assert records[0] == {
        "entityId": CP,
        "status": "matched",
        "platformSessionId": ids["P1"],
        "localSessionId": "L1",
        "platformStart": "2025-03-01T08:00:00Z",
        "platformEnd": "2025-03-01T10:00:00Z",
        "localStart": "2025-03-01T08:05:00Z",
        "localEnd": "2025-03-01T10:10:00Z",
        "platformEnergyKwh": 20.0,
        "localEnergyKwh": 19.5,
        "energyDiffKwh": -0.5,
        "startDiffMin": 5.0,
        "endDiffMin": 10.0,
        "overlapMin": 115.0,
    }
    assert [(r["status"], r["platformSessionId"], r["localSessionId"]) for r in records[1:]] == [
        ("only_platform", ids["P2"], None),
        ("only_local", None, "L2"),
    ]
    code, out, _ = run_cli(connected.path, "remote", "reconcile", "--entity", CP)
    assert code == 0
    assert out.splitlines()[-1] == "matched 1, only platform 1, only local 1"
    code, _, err = run_cli(connected.path, "remote", "reconcile", "--entity", EV)
    assert (code, err) == (
        2,
        "error: No platform sessions of 'ev-a' were pulled yet, so there is nothing to reconcile; run "
        "`remote sessions --start ISO` first.\n",
    )


# -- the command line ---------------------------------------------------------------------------------------
def test_cli_connect_reads_the_secret_from_stdin_and_never_prints_it(cli, fake, db_path):
    """The real entry point in a subprocess: exit codes, one-line errors, the secret kept out of every output."""
    runs = [
        cli("remote", "entities"),
        cli("remote", "connect", "--url", fake.url, "--client-id", CLIENT_ID, stdin="wrong-secret\n"),
        cli("remote", "connect", "--url", fake.url, "--client-id", CLIENT_ID, "--secret", CLIENT_SECRET),
        cli("remote", "connect", "--url", fake.url, "--client-id", CLIENT_ID, stdin=CLIENT_SECRET + "\n"),
        cli("remote", "entities", "--json"),
    ]
    assert [r.code for r in runs] == [2, 2, 2, 0, 0]
    for r in runs:
        assert_no_traceback(r.err)
        assert CLIENT_SECRET not in r.out + r.err
    assert runs[0].err == (
        "error: ChargeLens is not connected to a remote platform yet; run `remote connect --url URL --client-id ID` "
        "(or use the Entities page) first.\n"
    )
    assert runs[1].err == (
        f"error: Connecting to {fake.url} failed: the remote platform answered 401 Unauthorized: Unknown client id "
        "or secret.\n"
    )
    assert runs[2].err == (
        "error: The secret is never taken as an argument (it would stay in the shell history and the process list); "
        "pipe it on standard input or set CHARGELENS_REMOTE_SECRET.\n"
    )
    assert runs[3].out == f"connected to {fake.url} as {CLIENT_ID}: 3 remote entities\n"
    assert [e["id"] for e in json.loads(runs[4].out)["data"]] == [BATTERY, CP, EV]
    assert stat.S_IMODE(remote_secret_file(db_path).stat().st_mode) == 0o600


def test_cli_secret_from_the_environment(fake, db_path, monkeypatch):
    monkeypatch.setenv(remote.SECRET_ENV, CLIENT_SECRET)
    code, out, err = run_cli(db_path, "remote", "connect", "--url", fake.url, "--client-id", CLIENT_ID)
    assert (code, err) == (0, "")
    assert CLIENT_SECRET not in out
    monkeypatch.delenv(remote.SECRET_ENV)
    code, _, err = run_cli(db_path, "remote", "connect", "--url", fake.url, "--client-id", CLIENT_ID, stdin="")
    assert (code, err) == (
        2,
        "error: No client secret was given; pipe it on standard input or set "
        "CHARGELENS_REMOTE_SECRET (never as an argument).\n",
    )
    Store.close_all()


def test_cli_pull_sessions_features_and_a_failing_entity(connected, fake):
    db = connected.path
    code, out, err = run_cli(
        db, "remote", "pull", "--start", "2025-03-01T00:00Z", "--end", "2025-03-03", "--entity", EV
    )
    assert (code, err) == (0, "")
    assert out == "ev-a: read 288, stored 288, duplicate 0, conflict 0, rejected 0\n"
    fake.faults.broken_entity = CP
    code, out, err = run_cli(db, "remote", "pull", "--since-last")
    assert code == 2
    assert out.splitlines() == [
        "battery-9: read 0, stored 0, duplicate 0, conflict 0, rejected 0",
        "cp-b: read 0, stored 0, duplicate 0, conflict 0, rejected 0; failed: Pulling 'cp-b' failed: the remote "
        "platform answered 500 InternalError: The platform failed; it was logged.",
        "ev-a: read 0, stored 0, duplicate 0, conflict 0, rejected 0",
        "total: read 0, stored 0, duplicate 0, conflict 0, rejected 0",
    ]
    assert err == (
        "error: Pulling 'cp-b' failed: the remote platform answered 500 InternalError: The platform failed; it was "
        "logged.; the readings pulled before the failure are kept and `remote pull --since-last` continues from "
        "there.\n"
    )
    fake.reset()
    code, out, err = run_cli(db, "remote", "sessions")  # from the first readings pull: 2025-03-01
    assert code == 0
    assert [line.split()[1:] for line in out.splitlines()[1:]] == [
        [CP, "2025-03-01T08:00:00Z", "2025-03-01T10:00:00Z", "20.0", "reported", "platform"],
        [CP, "2025-03-01T14:00:00Z", "2025-03-01T15:00:00Z", "5.0", "reported", "platform"],
        [EV, "2025-03-01T18:00:00Z", "2025-03-01T20:00:00Z", "14.4", "reported", "platform"],
        [EV, "2025-03-02T02:00:00Z", "2025-03-02T03:00:00Z", "11.0", "reported", "platform"],
    ]
    assert err.splitlines()[1] == "cp-b: read 2, stored 2, duplicate 0, conflict 0, rejected 0"
    code, out, err = run_cli(db, "remote", "features", "set", EV, CAPTURE, "on")
    assert (code, out, err) == (0, '[{"feature": "CaptureChargeSessions", "enabled": true}]\n', "")
    assert fake.features == {EV: True}
    code, out, err = run_cli(db, "remote", "features", "set", BATTERY, CAPTURE, "on")
    assert (code, out) == (2, "")
    assert err.startswith(
        "error: Switching CaptureChargeSessions on for 'battery-9' failed: the remote platform "
        "answered 400 FeatureNotSupported"
    )
    code, out, _ = run_cli(db, "remote", "reconcile", "--entity", EV)
    assert code == 0 and out.splitlines()[-1] == "matched 2, only platform 0, only local 0"


# -- the Entities page ----------------------------------------------------------------------------------------
def test_entities_page_connects_pulls_and_reconciles(fake, db_path, monkeypatch):
    from datetime import date

    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    from ui.common import literal

    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/entities.py").run()
    at.text_input(key="remote-url").input(fake.url)
    at.text_input(key="remote-client-id").input(CLIENT_ID)
    at.text_input(key="remote-secret").input(CLIENT_SECRET)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Connected: 3 remote entities."]
    assert at.text_input(key="remote-secret").value == ""  # never shown again
    assert at.text_input(key="remote-url").value == fake.url
    at.date_input(key="remote-days").set_value((date(2025, 3, 1), date(2025, 3, 2))).run()
    at.button(key="remote-pull").click().run()
    assert not at.exception and not at.error and not at.warning, [e.value for e in at.error]
    assert at.selectbox(key="remote-reconcile").options == [BATTERY, CP, EV]
    at.selectbox(key="remote-reconcile").select(EV).run()
    shown = at.dataframe[-1].value
    assert list(shown["status"]) == ["matched", "matched"]
    assert CLIENT_SECRET not in str(at)

    at.button(key="remote-list").click().run()
    at.selectbox(key="remote-feature-entity").select(EV).run()
    at.button(key="remote-feature-True").click().run()
    assert [s.value for s in at.success] == [literal(f"{EV}: {CAPTURE} is on on the remote platform.")]
    assert fake.features == {EV: True}
    at.selectbox(key="remote-feature-entity").select(BATTERY).run()
    at.button(key="remote-feature-True").click().run()
    assert [e.value for e in at.error] == [
        literal(
            f"FeatureNotSupported: Switching {CAPTURE} on for '{BATTERY}' failed: the remote platform answered 400 "
            "FeatureNotSupported: Only EVs and charge points capture sessions."
        )
    ]
    assert fake.features == {EV: True}

    at.text_input(key="remote-pull-time").input("25:00").run()
    assert [e.value for e in at.error] == [literal("'25:00' is not a time of day; use HH:MM, for example 03:00.")]
    at.text_input(key="remote-pull-time").input("4:30").run()
    assert not at.error
    assert Store.open(db_path).settings().remote_pull_time == "04:30"
    schedule = [c.value for c in at.caption if c.value.startswith("While the server runs")]
    assert len(schedule) == 1 and "every day at 04:30 UTC" in schedule[0], schedule
    Store.close_all()

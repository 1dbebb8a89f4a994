"""While `serve` holds the database, `entities`, `features`, `locations`, `tariffs`, `prices`, `costs whatif`,
`reports monthly` and `remote` run through the server's API with the same output and exit codes as on a twin
database the CLI opens itself; `serve`, `demo` and `restore` are refused with one sentence saying to stop the server
first."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from core.features import CAPTURE
from tests.conftest import bearer, served_twin
from tests.fake_platform import CLIENT_ID, CLIENT_SECRET, fleet_platform, fresh, serving

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NIGHT = {"name": "night-rate", "currency": "EUR", "timezone": "Europe/Brussels",
         "bands": [{"band": "t1", "price_per_kwh": 0.30, "hours": [7, 23]}, {"band": "t2", "price_per_kwh": 0.15}],
         "fee_per_session": 0.5, "vat_pct": 21, "valid_from": "2025-01-01", "valid_to": None}  # fmt: skip
SPOT = {"name": "spot", "currency": "EUR", "timezone": "UTC", "bands": [], "vat_pct": 21}
HOURLY = "ts,price_per_kwh\n" + "".join(
    f"2025-03-{d:02d}T{h:02d}:00:00Z,0.{10 + h}\n" for d in (1, 2) for h in range(24)
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    yield from served_twin(tmp_path_factory.mktemp("admin-more"))


def same(cli, demo, *args: str, stdin: str | None = None) -> str:
    """Run a command through the server and here; both answers must be equal. Returns the output."""
    server, twin = demo
    through, here = cli(*args, db=server.db, stdin=stdin), cli(*args, db=twin, stdin=stdin)
    assert (through.code, through.out, through.err) == (here.code, here.out, here.err), args
    return through.out


def refused(cli, demo, *args: str, saying: str, stdin: str | None = None) -> None:
    server, twin = demo
    through, here = cli(*args, db=server.db, stdin=stdin), cli(*args, db=twin, stdin=stdin)
    assert (through.code, through.out, through.err) == (here.code, here.out, here.err), args
    assert through.code == 2 and through.err.count("\n") == 1 and saying in through.err, through.err


def both(cli, demo, *args: str, ids: tuple[str, str] = ("", "")) -> tuple[str, str]:
    """A command whose arguments or output hold an id that differs between the two databases (`ID` in `args` stands
    for it): it succeeds in both places with the same output but for the id. The outputs, through then here."""
    server, twin = demo
    through, here = ([a.replace("ID", i) if i else a for a in args] for i in ids)
    through, here = cli(*through, db=server.db), cli(*here, db=twin)
    assert through.code == here.code == 0 and through.err == here.err == "", (through.err, here.err)
    if all(ids):
        assert through.out.replace(ids[0], "ID") == here.out.replace(ids[1], "ID"), (through.out, here.out)
    return through.out, here.out


def test_entities_and_features_while_serving_match_the_same_commands_here(demo, cli):
    for args in (
        ("entities", "list"),
        ("entities", "list", "--json"),
        ("entities", "set-capacity", "ev-01", "82.5"),
        ("features", "set", "ev-02", "CaptureChargeSessions", "off"),
        ("entities", "list"),
        ("features", "set", "ev-02", "CaptureChargeSessions", "on"),
    ):
        same(cli, demo, *args)
    assert re.search(r"^ev-01 +EV .* 82\.5 +on$", same(cli, demo, "entities", "list"), re.MULTILINE)
    refused(cli, demo, "entities", "set-capacity", "ev-01", "301", saying="at most 300 kWh, not 301.0")
    refused(cli, demo, "entities", "set-capacity", "nobody", "60", saying="There is no entity 'nobody'")
    refused(cli, demo, "entities", "set-capacity", "cp-01", "60", saying="for EVs only")
    refused(cli, demo, "features", "set", "nobody", "Teleport", "on", saying="Unknown feature 'Teleport'")
    refused(cli, demo, "features", "set", "nobody", "CaptureChargeSessions", "on", saying="no entity 'nobody'")


def test_locations_while_serving_match_the_same_commands_here(demo, cli):
    assert "Office" in same(cli, demo, "locations", "list")
    same(cli, demo, "locations", "list", "--json")
    depot = both(cli, demo, "locations", "add", "--label", "Depot", "--lat", "50.85", "--lon", "4.35")
    garage = both(cli, demo, "locations", "add", "--label", "Garage", "--lat", "50.8", "--lon", "4.4", "--entity",
                  "ev-01", "--radius", "80")  # fmt: skip
    ids = [tuple(out.strip() for out in pair) for pair in (depot, garage)]
    assert all(UUID.fullmatch(i) for pair in ids for i in pair)
    both(cli, demo, "locations", "update", "ID", "--radius", "300", ids=ids[0])
    updated = both(cli, demo, "locations", "update", "ID", "--label", "Garage B", "--lat", "50.81", ids=ids[1])[0]
    assert updated == f"{ids[1][0]}: Garage B (50.81, 4.4), radius 80.0 m\n"
    listed = [cli("locations", "list", "--json", db=db).out for db in (demo[0].db, demo[1])]
    for pair in ids:
        listed = [text.replace(i, "ID") for text, i in zip(listed, pair, strict=True)]
    assert listed[0] == listed[1] and '"entityId": "ev-01"' in listed[0]
    for pair in ids:
        both(cli, demo, "locations", "delete", "ID", ids=pair)
    same(cli, demo, "locations", "list")
    refused(cli, demo, "locations", "delete", ids[0][0], saying=f"There is no location '{ids[0][0]}'")
    refused(cli, demo, "locations", "add", "--label", "Far", "--lat", "95", "--lon", "4", "--entity", "nobody",
            saying="latitude must be a number from -90 to 90")  # fmt: skip
    refused(cli, demo, "locations", "add", "--label", "Far", "--lat", "50", "--lon", "4", "--entity", "nobody",
            saying="There is no entity 'nobody'")  # fmt: skip
    office = json.loads(cli("locations", "list", "--json", db=demo[1]).out)["data"]
    office_id = next(o["id"] for o in office if o["label"] == "Office")
    refused(cli, demo, "locations", "update", office_id, "--radius", "5", saying="radius must be a number")


def test_tariffs_and_prices_while_serving_match_the_same_commands_here(demo, cli, tmp_path):
    night, spot, spot_2 = tmp_path / "night.json", tmp_path / "spot.json", tmp_path / "spot-2.json"
    prices = tmp_path / "march.csv"
    night.write_text(json.dumps(NIGHT))
    spot.write_text(json.dumps(SPOT))
    spot_2.write_text(json.dumps({**SPOT, "name": "spot-2"}))
    prices.write_text(HOURLY)
    for args in (
        ("tariffs", "list"),
        ("tariffs", "add", str(night)),
        ("tariffs", "add", str(spot), "--prices", str(prices)),
        ("tariffs", "assign", "night-rate", "--location", "Home"),
        ("tariffs", "assign", "spot", "--entity", "cp-01"),
        ("prices", "import", str(prices), "--tariff", "spot"),
        ("tariffs", "list"),
        ("tariffs", "list", "--json"),
    ):
        same(cli, demo, *args)
    listed = same(cli, demo, "tariffs", "list")
    assert re.search(r"^night-rate +EUR +Europe/Brussels +location Home$", listed, re.MULTILINE)
    refused(cli, demo, "tariffs", "assign", "night-rate", "--default", saying="overlap")
    refused(cli, demo, "tariffs", "assign", "nope", "--default", saying="There is no tariff 'nope'")
    refused(cli, demo, "tariffs", "add", str(spot_2), saying="without bands needs a dynamic price series")
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,price_per_kwh\n2025-03-01T00:00:00Z,cheap\n")
    refused(cli, demo, "prices", "import", str(bad), "--tariff", "spot", saying="bad.csv row 2")
    refused(cli, demo, "tariffs", "add", str(night), "--prices", str(bad), saying="bad.csv row 2")
    refused(cli, demo, "prices", "import", str(prices), "--tariff", "nope", saying="There is no tariff 'nope'")


def test_suggestions_whatif_and_reports_while_serving_match_the_same_commands_here(demo, cli, tmp_path):
    same(cli, demo, "locations", "suggest")
    same(cli, demo, "locations", "suggest", "--json")
    for args in (
        ("costs", "whatif", "--tariff", "demo-two-band"),
        ("costs", "whatif", "--tariff", "demo-two-band", "--entity", "ev-01", "--period", "week", "--json"),
        ("costs", "whatif", "--tariff", "demo-two-band", "--start", "2025-03-01", "--end", "2025-03-08T00:00+01:00"),
        ("reports", "monthly", "--month", "2025-03"),
        ("reports", "monthly", "--month", "2025-02", "--entity", "ev-01", "--format", "html"),
    ):
        assert same(cli, demo, *args).count("\n") > 1, args
    server, twin = demo
    for db, name in ((server.db, "through"), (twin, "here")):
        assert cli("reports", "monthly", "--month", "2025-03", "--out", str(tmp_path / name), db=db).code == 0
    assert (tmp_path / "through").read_bytes() == (tmp_path / "here").read_bytes()
    refused(cli, demo, "costs", "whatif", "--tariff", "nope", saying="There is no tariff 'nope'")
    refused(cli, demo, "costs", "whatif", "--tariff", "demo-two-band", "--start", "2031-01-01", saying="No sessions")
    refused(cli, demo, "reports", "monthly", "--month", "2025-03", "--entity", "nobody", saying="no entity 'nobody'")
    refused(cli, demo, "locations", "suggest", "--accept", "999", saying="There is no suggestion 999")
    assert json.loads(cli("locations", "suggest", "--json", db=twin).out)["data"]  # the demo has places to suggest
    through, here = both(cli, demo, "locations", "suggest", "--accept", "1", "--label", "Found")
    assert UUID.fullmatch(through.strip()) and UUID.fullmatch(here.strip())
    listed = [cli("locations", "list", db=db).out.replace(out.strip(), "ID") for db, out in
              ((server.db, through), (twin, here))]  # fmt: skip
    assert listed[0] == listed[1] and "Found" in listed[0]


@pytest.fixture(scope="module")
def platform():
    yield from serving(fleet_platform())


def test_remote_commands_while_serving_match_the_same_commands_here(demo, cli, platform):
    fake = fresh(platform)
    refused(cli, demo, "remote", "entities", saying="not connected to a remote platform yet")
    connect = ("remote", "connect", "--url", fake.url, "--client-id", CLIENT_ID)
    refused(cli, demo, *connect, stdin="wrong-secret\n", saying="answered 401 Unauthorized")
    connected = same(cli, demo, *connect, stdin=CLIENT_SECRET + "\n")
    assert connected == f"connected to {fake.url} as {CLIENT_ID}: 3 remote entities\n"
    for args in (
        ("remote", "entities"),
        ("remote", "entities", "--json"),
        ("remote", "pull", "--start", "2025-03-01T00:00Z", "--end", "2025-03-03", "--entity", "ev-a"),
        ("remote", "sessions", "--start", "2025-03-01"),
        ("remote", "reconcile"),
        ("remote", "reconcile", "--json", "--entity", "ev-a"),
        ("remote", "features", "set", "ev-a", CAPTURE, "on"),
        ("remote", "entities"),
    ):
        assert CLIENT_SECRET not in same(cli, demo, *args), args
    assert fake.features == {"ev-a": True}
    refused(cli, demo, "remote", "reconcile", "--entity", "nobody", saying="No platform sessions of 'nobody'")
    refused(cli, demo, "remote", "features", "set", "battery-9", CAPTURE, "on", saying="FeatureNotSupported")
    refused(cli, demo, "remote", "pull", "--since-last", "--start", "2025-03-01", saying="not both")
    fake.faults.broken_entity = "cp-b"
    try:
        refused(cli, demo, "remote", "pull", "--since-last", saying="Pulling 'cp-b' failed")
    finally:
        fake.reset()
    server, _ = demo
    kept = httpx.get(f"{server.url}/api/v1/remote/connection", headers=bearer(server), timeout=10)
    assert kept.json() == {"url": fake.url, "clientId": CLIENT_ID, "connected": True}


def test_serve_demo_and_restore_are_refused_while_a_server_holds_the_database(demo, cli, tmp_path):
    server, twin = demo
    first = "does not run through it: stop that server first"
    for args, saying in (
        (("serve", "--port", "9"), "stop that server before starting another"),
        (("demo",), f"`demo` {first}"),
        (("restore", str(twin)), f"`restore` {first}"),
    ):
        result = cli(*args, db=server.db)
        assert result.code == 2 and result.err.count("\n") == 1, (args, result.err)
        assert saying in result.err and server.url in result.err, (args, result.err)


def test_price_and_tariff_bodies_have_a_limit(demo, cli):
    server, _ = demo
    headers = bearer(server)
    big = "ts,price_per_kwh\n" + "2025-03-01T00:00:00Z,0.10\n" * 50_000  # about 1.3 MB of one price, as stored
    reply = httpx.post(f"{server.url}/api/v1/tariffs/spot/prices", content=big, timeout=30,
                       headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
    assert reply.status_code == 200 and reply.json() == {"tariff": "spot", "prices": 1}  # max_upload_mb, not 1 MB
    assert cli("settings", "set", "max_upload_mb", "1", db=server.db).code == 0
    try:
        reply = httpx.post(f"{server.url}/api/v1/tariffs/spot/prices", content=big, timeout=30,
                           headers={**headers, "Content-Type": "text/csv"})  # fmt: skip
        assert reply.json()["title"] == "PayloadTooLarge" and "max_upload_mb" in reply.json()["detail"]
    finally:
        assert cli("settings", "set", "max_upload_mb", "1024", db=server.db).code == 0
    reply = httpx.post(f"{server.url}/api/v1/tariffs", json={"name": "x" * 2_000_000}, headers=headers, timeout=30)
    assert reply.status_code == 413 and reply.json()["title"] == "PayloadTooLarge"

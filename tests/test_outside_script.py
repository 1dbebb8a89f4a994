"""docs/api_flow.py, a script that knows only API.md, does the whole flow against a real server on the demo."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from core.credentials import load_or_create
from tests.conftest import ROOT
from tests.e2e.conftest import Server, load_demo

SCRIPT = ROOT / "docs" / "api_flow.py"


def test_the_script_imports_nothing_of_chargelens():
    tree = ast.parse(SCRIPT.read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m and m.split(".")[0] in ("core", "ui", "tests", "app", "server")}


def test_the_outside_script_does_the_whole_flow_against_a_real_server(tmp_path):
    db = tmp_path / "chargelens.duckdb"
    load_demo(db)
    server = Server(db)
    try:
        run = subprocess.run(
            [sys.executable, str(SCRIPT), "--url", f"{server.url}/api"],
            input=json.dumps(load_or_create(db)),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "authenticated: token valid 3599 s"
    assert lines[1] == "entities: 11 (Battery, ChargePoint, EV)"
    assert lines[2] == "capacity set: ev-05 60 kWh, then CaptureChargeSessions on"
    assert lines[3] == (
        "refusals: BatteryCapacityRequired (ev-05), FeatureNotAvailable (ev-06), FeatureNotSupported (home-battery), "
        "UnknownFeature (cp-01)"
    )
    assert lines[4].startswith("sessions of ") and lines[4].endswith(
        ", the same at page sizes 1, 7 and 1000, no duplicates"
    )
    assert lines[5].startswith("CaptureChargeSessions off: empty page; back on: the same ")
    assert lines[-1] == "the whole flow held"


def test_the_script_says_what_to_do_when_no_server_answers():
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", "http://127.0.0.1:9/api"],
        input=json.dumps({"clientId": "x", "clientSecret": "y"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "could not be reached" in run.stderr and "make run" in run.stderr
    assert "Traceback" not in run.stderr

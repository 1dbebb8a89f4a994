"""kill -9 inside a re-matching (a location added) and inside a repricing (a tariff assigned): the work is done but
not committed when the process dies; the database reopens exactly as before. The same command run to its end
changes the state, so the comparison can fail."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from core.pipeline import load_demo
from core.store import Store
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
TARIFF = ROOT / "tests" / "fixtures" / "tariffs" / "home-two-band.json"

# Runs a CLI command with one step of it (module, function) made to report and then hang once its work is done,
# inside the command's transaction: a kill then always lands between the work and the commit.
HANG_AFTER = textwrap.dedent(
    """
    import importlib, sys, time
    module, name = sys.argv[1].rsplit(".", 1)
    module = importlib.import_module(module)
    real = getattr(module, name)

    def hang(*args, **kwargs):
        real(*args, **kwargs)
        print("done, not committed", flush=True)
        time.sleep(600)

    setattr(module, name, hang)
    from core.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def state(db) -> tuple:
    store = Store.open(db)
    try:
        matches = store.frame("SELECT session_id, location_id, accuracy FROM session_locations ORDER BY ALL")
        costs = store.frame("SELECT session_id, cost_total, cost_energy, energy_t1_kwh FROM sessions ORDER BY ALL")
        return (
            matches.hash_rows().sum(),
            matches.height,
            costs.hash_rows().sum(),
            store.scalar("SELECT count(*) FROM locations"),
            store.scalar("SELECT count(*) FROM tariff_assignments"),
        )
    finally:
        store.close()


def env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    db = tmp_path_factory.mktemp("crash-jobs") / "base.duckdb"
    store = Store.open(db)
    load_demo(store, seed=1)
    store.close()
    added = subprocess.run([sys.executable, "-m", "core", "--db", str(db), "tariffs", "add", str(TARIFF)], cwd=ROOT,
                           env=env(), capture_output=True, text=True)  # fmt: skip
    assert added.returncode == 0, added.stderr
    return db


# Home of the demo fleet: a second, wider place around it matches sessions that the first one did not.
# (the step that hangs, the command, the part of the state it must change: matches or costs)
CASES = {
    "re-matching": ("core.pipeline._rematch", ("locations", "add", "--label", "Around home", "--lat", "50.85",
                                               "--lon", "4.35", "--radius", "5000"), 0),
    "repricing": ("core.pricing.reprice", ("tariffs", "assign", "home-two-band", "--entity", "ev-01"), 2),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_kill_9_between_the_work_and_its_commit_leaves_the_state_before(base, tmp_path, case):
    step, command, changed = CASES[case]
    before = state(base)
    done = tmp_path / "done.duckdb"
    shutil.copy(base, done)
    finished = subprocess.run([sys.executable, "-m", "core", "--db", str(done), *command], cwd=ROOT, env=env(),
                              capture_output=True, text=True)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert state(done)[changed] != before[changed]  # the command changes what the kill must not leave half-changed

    db = tmp_path / "killed.duckdb"
    shutil.copy(base, db)
    proc = subprocess.Popen([sys.executable, "-c", HANG_AFTER, step, "--db", str(db), *command], cwd=ROOT,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "done, not committed", proc.stderr.read()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    assert state(db) == before

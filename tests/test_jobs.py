"""The job table: every import, detection and remote pull recorded with its outcome; a killed one is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

import core
from core import jobs
from core.detect import DetectParams
from core.errors import InputError
from core.importers import ImportOptions
from core.pipeline import detect, ingest_file, load_demo
from core.queries import jobs as job_table
from core.store import INTERRUPTED, Store
from tests.conftest import ROOT


def rows(store: Store) -> list[tuple]:
    return job_table(store, "UTC").select("kind", "subject", "state", "outcome").rows()


def test_imports_and_detections_are_recorded_with_their_outcome(tmp_path):
    store = Store.open(tmp_path / "j.duckdb")
    load_demo(store, seed=1)
    good = tmp_path / "good.csv"
    good.write_text("entity_id,ts,power_kw\nev-x,2025-02-01T10:00:00Z,1.5\nev-x,2025-02-01T10:01:00Z,oops\n")
    ingest_file(store, good, ImportOptions())
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    with pytest.raises(InputError) as refused:
        ingest_file(store, bad, ImportOptions())
    detect(store, DetectParams())
    recorded = rows(store)
    assert [r[:3] for r in recorded] == [
        ("detect", "all entities", "done"),
        ("import", "bad.csv", "failed"),
        ("import", "good.csv", "done"),
        ("import", "demo fleet (seed 1)", "done"),
    ]
    sessions = store.scalar("SELECT count(*) FROM sessions WHERE source = 'detected'")
    assert recorded[0][3] == f"{sessions:,} sessions"
    assert recorded[1][3] == refused.value.detail
    assert recorded[2][3] == "good.csv: read 2, stored 1, duplicate 0, conflict 0, rejected 1"
    assert store.scalar("SELECT count(*) FROM jobs WHERE finished IS NULL") == 0
    store.close()


def test_work_inside_a_recorded_job_is_part_of_it(tmp_path):
    store = Store.open(tmp_path / "n.duckdb")
    with jobs.recorded(store, "remote pull", "platform") as outer:
        with jobs.recorded(store, "import", "chunk") as inner:
            inner.line = "not a row of its own"
        outer.line = "1 entity"
    assert rows(store) == [("remote pull", "platform", "done", "1 entity")]
    store.close()


def test_a_job_killed_midway_is_interrupted_at_the_next_open_and_its_work_not_kept(tmp_path):
    db = tmp_path / "k.duckdb"
    store = Store.open(db)
    load_demo(store, seed=1)
    readings = store.scalar("SELECT count(*) FROM readings")
    store.close()
    big = tmp_path / "big.csv"
    with big.open("w") as out:  # a file whose import takes seconds, so the kill lands inside it
        out.write("entity_id,ts,power_kw\n")
        for minute in range(400_000):
            out.write(f"ev-k{minute % 40},{1_700_000_000 + 60 * (minute // 40)},{minute % 7}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    proc = subprocess.Popen([sys.executable, "-m", "core", "--db", str(db), "ingest", str(big)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    # Kill once the job row says running: the import itself is then under way (or about to start).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if "running" in _states_from_wal_free_copy(db, tmp_path):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the import ended before it could be killed; make the file larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    store = Store.open(db)
    assert rows(store)[0] == ("import", "big.csv", "interrupted", INTERRUPTED)
    assert store.scalar("SELECT count(*) FROM readings") == readings  # nothing of the killed import
    store.close()


def _states_from_wal_free_copy(db, tmp_path) -> str:
    """The job states as another process sees them: a copy of the file and its log, opened read-only."""
    import shutil

    import duckdb

    copy = tmp_path / "peek.duckdb"
    for suffix in ("", ".wal"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copyfile(source, copy.with_name(copy.name + suffix))
        else:
            copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(copy), read_only=True)
    except duckdb.Error:
        return ""
    try:
        return " ".join(r[0] for r in con.execute("SELECT state FROM jobs").fetchall())
    except duckdb.Error:
        return ""
    finally:
        con.close()


def test_overview_lists_the_jobs(tmp_path, monkeypatch):
    db = tmp_path / "o.duckdb"
    load_demo(Store.open(db), seed=1)
    Store.close_all()
    monkeypatch.setenv("CHARGELENS_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    assert table["kind"].tolist() == ["import"] and table["state"].tolist() == ["done"]
    assert table["subject"].tolist() == ["demo fleet (seed 1)"]
    Store.close_all()


JOB_PRIORITY = """
import os, threading
import polars as pl
from core.jobs import BACKGROUND_NICE, Jobs

pl.DataFrame({"a": list(range(100_000))}).sort("a")  # starts polars' worker threads
def polars_nice():
    found = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as comm:
            if comm.read().startswith("polars-"):
                found.append(os.getpriority(os.PRIO_PROCESS, int(tid)))
    return found
before = polars_nice()
seen = {}
def work(progress):
    seen["job"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen["polars"] = polars_nice()
    return {}
queue = Jobs()
job = queue.submit("detect", work)
queue._worker.shutdown(wait=True)
print(job.state, seen["job"], BACKGROUND_NICE, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
      sorted(set(before)), sorted(set(seen["polars"])))
"""


def test_jobs_run_at_a_lower_cpu_priority_than_requests():
    # In a process of its own: the priority of threads cannot be raised back without privileges.
    out = subprocess.run([sys.executable, "-c", JOB_PRIORITY], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    state, job_nice, wanted, caller_nice, polars_before, polars_during = out.stdout.strip().split(maxsplit=5)
    assert state == "done"
    assert int(job_nice) == int(wanted) == jobs.BACKGROUND_NICE > 0
    assert int(caller_nice) == 0  # the thread that queued the job (a request's) keeps its priority
    assert polars_before == "[0]" and polars_during == f"[{jobs.BACKGROUND_NICE}]"


JOB_HEAP = """
import ctypes, sys
import core
from core import jobs
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
if sys.argv[1] == "off":
    jobs.release_free_memory = lambda: None
def rss_mb():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024
kept = []
def work(progress):
    blocks = [libc.malloc(32 * 1024) for _ in range(6400)]  # 200 MB in blocks too small for mmap of their own
    for block in blocks:
        ctypes.memset(block, 1, 32 * 1024)
    # Every 64th block stays (3 MB, a fragmented heap): free() alone cannot shrink the heap past any of them.
    kept.extend(blocks[::64])
    for i, block in enumerate(blocks):
        if i % 64:
            libc.free(block)
    return {}
queue = jobs.Jobs()
queue._worker.submit(lambda: None).result()  # the worker thread exists before the measurement
before = rss_mb()
job = queue.submit("import", work)
queue._worker.shutdown(wait=True)
print(job.state, round(rss_mb() - before))
"""


@pytest.mark.parametrize("trim", ["on", "off"])
def test_a_job_gives_its_freed_heap_back_to_the_system(trim):
    # In a process of its own, so that its memory is only this job's; "off" shows what stays resident without it.
    out = subprocess.run([sys.executable, "-c", JOB_HEAP, trim], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    state, grown_mb = out.stdout.split()
    assert state == "done"
    if trim == "on":
        assert int(grown_mb) < 20
    else:
        assert int(grown_mb) > 150  # of the 197 MB freed


def test_polars_starts_with_the_allocator_settings_unless_the_user_gave_others():
    own = core.POLARS_OWN_CONF
    assert core.malloc_conf("") == core.POLARS_MALLOC_CONF
    assert core.malloc_conf(own) == core.POLARS_MALLOC_CONF  # inherited from a process that imported polars first
    assert core.malloc_conf(f"{own},{own}") == core.POLARS_MALLOC_CONF
    assert core.malloc_conf("narenas:2") == "narenas:2"
    assert core.malloc_conf(f"{own},narenas:2") == f"{own},narenas:2"

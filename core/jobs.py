"""Long work: the job table every import, detection and remote pull is recorded in, and the serving process's queue.

`recorded` writes a row of the `jobs` table when long work starts (running) and when it ends (done, with one line of
outcome, or failed, with the sentence the user got). Rows are written in transactions of their own, outside the
work's, so a job killed midway stays `running` in the file while its work is rolled back; the next process that
opens the database (only one can) marks it `interrupted` (core.store). The Overview page lists the table.

`Jobs` is the serving process's queue for work sent by the CLI while the server holds the database: a job is
queued, then running (with its progress, 0..1), then done (with its result) or failed (with one sentence). Jobs
run one after the other on a single worker thread, as DuckDB takes one writer at a time anyway; readers of the API
and the pages go on meanwhile and see the database before the job's transaction or after it, never between. That
thread, and the polars worker threads the work parses with, run at a lower CPU priority (`BACKGROUND_NICE`): on a
busy machine requests and pages go first and the job takes what is left, so a long import does not make every
reader wait; on an idle machine the job runs at full speed. After each job the C heap's free pages go back to the
system (glibc's malloc_trim, a few ms): a job's large frees otherwise stay resident in the allocator's arenas, and
the serving process's memory creeps up from job to job (bench/soak.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import ChargeLensError, NotFound

if TYPE_CHECKING:
    from core.store import Store

log = logging.getLogger("chargelens.jobs")
KEEP = 200  # finished jobs remembered

Progress = Callable[[float, str], None]
UNEXPECTED = "The job failed unexpectedly; it was logged. Try again."
BACKGROUND_NICE = 10  # Linux nice value of job threads: about a tenth of a request's CPU share when both want it
_inside = contextvars.ContextVar("chargelens_job", default=None)  # the recorded job this work is part of


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Return the free pages of the C heap to the system (glibc only; elsewhere nothing happens)."""
    if _TRIM is not None:
        _TRIM(0)


@dataclass
class Outcome:
    """What a recorded job says when it ends: one line for the job table."""

    line: str = ""


@contextlib.contextmanager
def recorded(store: Store, kind: str, subject: str) -> Iterator[Outcome]:
    """Record the work inside as one job of the table (kind: import, detect, remote pull; subject: what it works
    on). Work that runs inside another recorded job is part of that one and gets no row of its own."""
    if _inside.get() is not None:
        yield Outcome()
        return
    job_id = uuid.uuid4().hex
    store.cursor().execute(
        "INSERT INTO jobs (job_id, kind, subject, state, started) VALUES (?, ?, ?, 'running', now())",
        [job_id, kind, subject[:500]],
    )
    outcome, token = Outcome(), _inside.set(job_id)
    try:
        yield outcome
    except BaseException as exc:
        error = getattr(exc, "detail", None) or UNEXPECTED  # ChargeLensError and PlatformError carry one sentence
        with contextlib.suppress(Exception):  # a full or read-only disk: the error the user sees is the work's
            _end(store, job_id, "failed", error)
        raise
    else:
        _end(store, job_id, "done", outcome.line)
    finally:
        _inside.reset(token)


def _end(store: Store, job_id: str, state: str, outcome: str) -> None:
    store.cursor().execute(
        "UPDATE jobs SET state = ?, outcome = ?, finished = now() WHERE job_id = ?", [state, outcome[:1000], job_id]
    )


@dataclass
class Job:
    id: str
    kind: str
    state: str = "queued"
    progress: float = 0.0
    message: str = ""
    result: dict | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)

    def record(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "result": self.result,
            "error": self.error,
        }


def background_priority() -> None:
    """Lowers the CPU priority of this thread and of polars' worker threads to `BACKGROUND_NICE`.

    Linux gives each thread its own nice value; the polars pool is used by the work of jobs (import parsing,
    detection) and barely by requests, which read through DuckDB. Where priorities cannot be set, nothing changes.
    """
    threads = [threading.get_native_id()]
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/comm") as comm:
                if comm.read().startswith("polars-"):
                    threads.append(int(tid))
    for tid in threads:
        with contextlib.suppress(OSError, AttributeError):
            if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)


class Jobs:
    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chargelens-job")

    def submit(self, kind: str, work: Callable[[Progress], dict], cleanup: Callable[[], None] | None = None) -> Job:
        job = Job(uuid.uuid4().hex, kind)
        with self._lock:
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
            for old in sorted(finished, key=lambda j: j.created)[: max(0, len(finished) - KEEP)]:
                del self._jobs[old.id]
        self._worker.submit(self._run, job, work, cleanup)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"There is no job '{job_id[:64]}'; jobs are kept while the server runs.")
        return job

    @staticmethod
    def _run(job: Job, work: Callable[[Progress], dict], cleanup: Callable[[], None] | None) -> None:
        def progress(share: float, text: str) -> None:
            job.progress, job.message = max(job.progress, min(share, 1.0)), text

        background_priority()
        job.state = "running"
        try:
            job.result = work(progress)
            job.progress, job.state = 1.0, "done"
        except ChargeLensError as exc:
            job.error, job.state = exc.detail, "failed"
        except Exception:  # logged for the operator; the client gets one sentence
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error, job.state = UNEXPECTED, "failed"
        finally:
            if cleanup is not None:
                cleanup()
            release_free_memory()

"""Long work of the serving process (imports sent by the CLI while the server holds the database), one job at a time.

A job is queued, then running (with its progress, 0..1), then done (with its result) or failed (with one sentence).
Jobs run one after the other on a single worker thread, as DuckDB takes one writer at a time anyway; readers of the
API and the pages go on meanwhile and see the database before the job's transaction or after it, never between.
Jobs live as long as the server; the work itself is in the database.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from core.errors import ChargeLensError, NotFound

log = logging.getLogger("chargelens.jobs")
KEEP = 200  # finished jobs remembered

Progress = Callable[[float, str], None]


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

        job.state = "running"
        try:
            job.result = work(progress)
            job.progress, job.state = 1.0, "done"
        except ChargeLensError as exc:
            job.error, job.state = exc.detail, "failed"
        except Exception:  # logged for the operator; the client gets one sentence
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error, job.state = "The job failed unexpectedly; it was logged on the server. Try again.", "failed"
        finally:
            if cleanup is not None:
                cleanup()

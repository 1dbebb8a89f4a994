"""DuckDB's own memory over many small statements: it rises, then holds (the first minutes of bench/soak.py).

One database file, one small table, the same two-table join again and again (each statement, like each of the
serving process's, pins and unpins a few buffers). Every 5,000 statements it prints the C heap in use (glibc's
mallinfo2: DuckDB allocates there; Python's own objects are not part of the rise) and the buffer pool's eviction
queues (duckdb_eviction_queues(): nodes and dead nodes). Each unpin adds a node to the queue; a node whose block is
gone stays in the queue as a dead node, and holds that block's bookkeeping allocation, until DuckDB purges the queue.
DuckDB purges it only when it has grown large enough, so the heap rises for the first ~20,000 statements and then
stays level: a bounded cost of the database instance, released when it closes, not a leak.
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
from pathlib import Path

import duckdb


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")
    ]  # fmt: skip


def heap_in_use_mb() -> float:
    """Bytes of the C heap in use, every arena (glibc)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().uordblks / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=60_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "queue.duckdb"))
        con.execute("CREATE TABLE t AS SELECT 'x' || range AS a, range * 1.5 AS b FROM range(1000)")
        cur = con.cursor()
        base = heap_in_use_mb()
        print(f"DuckDB {duckdb.__version__}: C heap in use at the start {base:.1f} MB")
        for i in range(1, args.statements + 1):
            cur.execute("SELECT count(*) FROM t JOIN t t2 USING (a)").fetchall()
            if i % 5000 == 0:
                nodes, dead = con.execute(
                    "SELECT sum(approximate_size), sum(dead_nodes) FROM duckdb_eviction_queues()"
                ).fetchone()
                print(f"{i:>7,} statements: C heap +{heap_in_use_mb() - base:5.1f} MB; eviction queues {nodes:>8,} "
                      f"nodes, {dead:>8,} of them dead", flush=True)  # fmt: skip
        cur.close()
        con.close()
        print(f"database closed: C heap +{heap_in_use_mb() - base:.1f} MB")


if __name__ == "__main__":
    main()

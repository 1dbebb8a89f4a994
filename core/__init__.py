"""ChargeLens core: every piece of logic, with no Streamlit in it."""

import os

__version__ = "0.1.0"

# polars' allocator (jemalloc) returns freed memory from a thread of its own, within a second, instead of on the
# threads that allocate. Measured with bench/soak.py --minutes 30: the serving process's memory grew by 22.9 % over
# the steady cycles with polars' default and by 6.1 % with this. It is read when polars starts, so it is set here,
# before any module of core imports polars (the serving process inherits it through `serve`); a value set in the
# environment is kept. polars writes its own decay settings in front of any value when it is imported, so a process
# started by one that imported polars first (benchmarks, tests) inherits only those: they are not a value of the user's.
POLARS_MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000"
POLARS_OWN_CONF = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # what polars/__init__.py puts in front


def malloc_conf(current: str) -> str:
    """The allocator settings to start polars with: `current` when it holds a value of the user's, else ours."""
    own = current
    while own.startswith(POLARS_OWN_CONF):
        own = own[len(POLARS_OWN_CONF) :].lstrip(",")
    return current if own else POLARS_MALLOC_CONF


os.environ["_RJEM_MALLOC_CONF"] = malloc_conf(os.environ.get("_RJEM_MALLOC_CONF", ""))

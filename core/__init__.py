"""ChargeLens core: every piece of logic, with no Streamlit in it."""

import os

__version__ = "0.1.0"

# polars' allocator (jemalloc) returns freed memory from a thread of its own, within a second, instead of on the
# threads that allocate. Measured with bench/soak.py --minutes 30: the serving process's memory grew by 22.9 % over
# the steady cycles with polars' default and by 6.1 % with this. It is read when polars starts, so it is set here,
# before any module of core imports polars (the serving process inherits it through `serve`); a value set in the
# environment is kept, and polars adds its own decay settings in front of it.
POLARS_MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000"
os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_MALLOC_CONF)

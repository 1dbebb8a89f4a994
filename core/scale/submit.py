"""The file to hand to spark-submit: `spark-submit [options] core/scale/submit.py scale detect --readings ...`.

It runs the command line as `python -m core` does; Spark's --master (or the cluster manager's) then applies, since
`scale detect` leaves the master to spark-submit unless --master is given.
"""

import sys
from pathlib import Path

# Python put this file's folder first on the path; its module names must not shadow anything else.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from core.cli import main

sys.exit(main())

"""CPU priority of worker processes: serving first, batch work with what is left."""

from __future__ import annotations

import os

# Trial workers and sandboxed strategy workers run at this niceness. On a machine they keep busy, the server's event
# loop still gets a core as soon as a request arrives: Linux's scheduler weighs nice 10 at about a tenth of nice 0,
# while a worker alone on an idle core runs at full speed.
WORKER_NICENESS = 10


def run_as_background_worker() -> None:
    """Lower this process's priority to WORKER_NICENESS (never raise it: a process may only lower its own)."""
    current = os.nice(0)
    if current < WORKER_NICENESS:
        os.nice(WORKER_NICENESS - current)

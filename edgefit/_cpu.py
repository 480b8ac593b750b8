"""How many CPU threads a compute-bound step (training, a tree fit) should take here."""

from __future__ import annotations

import os


def spare_threads() -> int:
    """Two CPU threads, or one when other work already keeps the machine's cores busy.

    OpenMP threads (torch's, scikit-learn's) spin-wait for each other; on the 2-core development
    machine, with other jobs running, the default training recipe took 75-165 s on 2 threads and
    about 30 s on 1, and a learned-profile fit beside another test worker 17 s against 4.5 s alone.
    """
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0] > cores - 0.5
    except (AttributeError, OSError):  # no load average (Windows): assume an idle machine
        busy = False
    return 1 if busy or cores < 2 else 2

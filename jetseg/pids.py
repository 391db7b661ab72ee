"""Process ids in file names (``.<name>.<pid>.partial``, ``.jetseg-calib.<pid>.*``): whether the process that
left a file behind still runs, so that only the leftovers of dead runs are recovered or removed."""
from __future__ import annotations

import os


def running(pid: int) -> bool:
    """True while process ``pid`` exists (another user's process counts: it cannot be signalled, but it runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

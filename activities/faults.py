"""Named crash points for fault tests: the process kills itself (SIGKILL) where HCP_CRASH_POINT says.

Nothing happens unless the variable is set. Tests start a real worker with it to prove that a crash
between two effects (a send and its record) neither loses nor repeats the effect.
"""

from __future__ import annotations

import os
import signal

CRASH_POINT_ENV = "HCP_CRASH_POINT"


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, if this is the configured crash point."""
    if os.environ.get(CRASH_POINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

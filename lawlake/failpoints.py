"""Named points where a test can make the process die, to prove a crash anywhere is survived.

``LAWLAKE_CRASH_AT=<point>`` (e.g. ``publish:silver.suspects``, ``after:gather``) makes
the process kill itself with SIGKILL the first time it reaches that point — no cleanup,
no ``finally``, exactly like ``kill -9``. Unset (always, outside tests), :func:`hit` does
nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["hit", "ENV"]

ENV = "LAWLAKE_CRASH_AT"


def hit(point: str) -> None:
    if os.environ.get(ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)

"""How long a command took to start: its imports and configuration, before its first step
(export and train print it). Standard library only: cli.main marks the end of every command."""

from __future__ import annotations

import os
import time
from pathlib import Path

# when the last command run in this process ended (boot clock): `main` runs several stages in one
_COMMAND_ENDED: list[float] = []


def _boot_clock() -> float | None:
    """Seconds since boot, the clock /proc's process start times count in (Linux; else None)."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return None if clock is None else time.clock_gettime(clock)


def command_ended() -> None:
    """cli.main marks the end of each command: the next one in this process (the MLproject's
    `main` runs its stages in one) counts its start-up from here, not from the process start."""
    now = _boot_clock()
    _COMMAND_ENDED[:] = [] if now is None else [now]


def startup_seconds() -> float:
    """Seconds since this command started: the process start (Linux: /proc; elsewhere 0.0) or
    the end of the command before it in this process, whichever is later."""
    now = _boot_clock()
    if now is None:
        return 0.0
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0.0
    return now - max([ticks / os.sysconf("SC_CLK_TCK"), *_COMMAND_ENDED])

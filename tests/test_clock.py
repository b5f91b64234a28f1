"""ticketml.clock: a command's start-up time, as export and train print it."""

import subprocess
import sys


def test_startup_seconds_counts_from_the_process_start_or_the_last_command():
    """What export and train print as their imports and configuration: a child that waits
    1.5 s before importing ticketml.clock reports at least that; after a command ends in the same
    process (`main` runs its stages in one) the next counts from there."""
    code = (
        "import time; time.sleep(1.5); "
        "from ticketml.clock import command_ended, startup_seconds; "
        "first = startup_seconds(); command_ended(); time.sleep(0.2); "
        "print(first, startup_seconds())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    first, after = map(float, out.stdout.split())
    assert 1.5 <= first < 30.0
    assert 0.2 <= after < 1.0

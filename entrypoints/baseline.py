"""MLproject entry point `baseline`."""

import sys

from ticketml.cli import entrypoint

sys.exit(entrypoint(["baseline"]))

"""MLproject entry point `data`."""

import sys

from ticketml.cli import entrypoint

sys.exit(entrypoint(["data"]))

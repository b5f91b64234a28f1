"""MLproject entry point `train`."""

import sys

from ticketml.cli import entrypoint

sys.exit(entrypoint(["train"]))

"""MLproject entry point `tune`."""

import sys

from ticketml.cli import entrypoint

sys.exit(entrypoint(["tune"]))

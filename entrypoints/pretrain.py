"""MLproject entry point `pretrain`."""

import sys

from ticketml.cli import entrypoint

sys.exit(entrypoint(["pretrain"]))

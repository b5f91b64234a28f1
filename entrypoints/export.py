"""MLproject entry point `export`: ONNX export, register as @challenger, promotion gate."""

import sys

from ticketml.cli import entrypoint

sys.exit(entrypoint(["export_onnx", "evaluate", "register", "promote"]))

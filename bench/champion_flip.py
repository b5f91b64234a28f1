"""Move @champion while clients are being served: no failed request, and the new version answers.

    python bench/champion_flip.py [--workdir .] [--clients 8] [--seconds 20]

Needs two registered versions in the working directory's MLflow store (e.g. `make demo`, then
`ticketml register`); starts `ticketml serve` on the champion with serve.reload_interval_s=1,
sends requests from N clients without pause, moves @champion to the other version half-way, and
records every answer's status and X-Model-Version. Writes bench/results/champion_flip.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from tools.flip import flip_under_load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "champion_flip.json"))
    args = parser.parse_args()
    result = flip_under_load(args.workdir, args.clients, args.seconds)
    result["machine"] = machine_info()
    print(
        f"{result['requests']} requests from {result['clients']} clients, {result['failed']} failed; "
        f"@champion {result['from_version']} -> {result['to_version']}, swapped "
        f"{result['alias_to_swap_s']:.2f} s after the alias moved; {result['sent_after_swap']} "
        f"requests sent after the swap, {result['sent_after_swap_not_new']} not answered by "
        f"version {result['to_version']}"
    )
    write_result(result, args.out)


if __name__ == "__main__":
    main()

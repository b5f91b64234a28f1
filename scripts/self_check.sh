#!/usr/bin/env bash
# End-to-end self check on small data, in a throwaway working directory.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$REPO/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false CI=${CI:-true}
export TICKETML_CONFIG_DIR="$REPO/configs"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export MLFLOW_TRACKING_URI="sqlite:///$WORK/mlflow.db"
SMALL=(data.synthetic.n_samples=600)
step() { echo "== $*"; "$@"; }
step ticketml download_data "${SMALL[@]}"
step ticketml preprocess "${SMALL[@]}"
step ticketml baseline
for f in data/processed/train.parquet artifacts/label_maps.json artifacts/metrics/baseline.json; do
  test -s "$f" || { echo "self_check: missing $f"; exit 1; }
done
echo "self_check: OK ($WORK)"

#!/usr/bin/env bash
# The whole pipeline on the built-in defaults, as an MLflow Project run (`make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}"
# Small but honest: two Optuna trials of two epochs, each epoch half of the training split (a new
# half each epoch: one pass over it in all); the better trial's own checkpoint is the model (no
# retraining). About 7 minutes on 2 CPU cores. DEMO_OVERRIDES replaces these.
OVERRIDES="${DEMO_OVERRIDES-tune.max_epochs=2 tune.limit_train_batches=0.5}"
mlflow run . -e main --env-manager local --experiment-name ticketml -P overrides="$OVERRIDES"
cat <<EOT

Demo finished. Where to look:
  data/processed/{train,val,test}.parquet, artifacts/label_maps.json, artifacts/data_report.json
  artifacts/metrics/*.json (baseline, multitask, onnx, onnx_int8), plots/*.png
  MLflow runs:  make mlflow-ui   then open http://127.0.0.1:8080
EOT
if [ -f artifacts/model.onnx ]; then
cat <<'EOT'
Serve the champion and ask it:
  make serve            # FastAPI on :8000 (or: make serve-mlflow  → mlflow models serve on :5001)
  curl -s -X POST http://127.0.0.1:8000/predict -H 'Content-Type: application/json' \
       -d '{"text": "Не могу подключиться к VPN с ноутбука"}'
EOT
fi

#!/usr/bin/env bash
# Optional: build a TensorRT engine from artifacts/model.onnx with trtexec (nothing else depends on it).
#   ticketml/production/trt_export.sh [--fp16] [--onnx artifacts/model.onnx] [--out artifacts/model.plan]
set -euo pipefail
ONNX=artifacts/model.onnx OUT=artifacts/model.plan FP16=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fp16) FP16="--fp16" ;;
    --onnx) ONNX="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n 2,3p "$0"; exit 0 ;;
    *) echo "ERROR: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if ! command -v trtexec >/dev/null 2>&1; then
  echo "ERROR: trtexec not found: install TensorRT (NVIDIA GPU machines only) to build $OUT; serving does not need it" >&2
  exit 1
fi
[ -f "$ONNX" ] || { echo "ERROR: $ONNX not found (run ticketml export_onnx first)" >&2; exit 1; }
# the longest input: the model's own max_length (model_config.json beside the graph), unless MAXLEN says
MAXLEN="${MAXLEN:-$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["max_length"])' \
  "$(dirname "$ONNX")/model_config.json" 2>/dev/null || echo 256)}"
SHAPES="input_ids:1x8,attention_mask:1x8"
OPT="input_ids:16x64,attention_mask:16x64"
MAX="input_ids:64x${MAXLEN},attention_mask:64x${MAXLEN}"
trtexec --onnx="$ONNX" --saveEngine="$OUT.tmp" --minShapes="$SHAPES" --optShapes="$OPT" --maxShapes="$MAX" $FP16
mv "$OUT.tmp" "$OUT"
echo "TensorRT engine: $OUT"

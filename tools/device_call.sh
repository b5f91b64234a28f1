# One call on a lent GPU machine (the `device` tool's run): unpack a carry, optionally measure
# training throughput with the GPU to itself, then run benchmark jobs side by side, and leave the
# results under $OUT in files the tool brings back (at most 8, 16 MiB each).
#
#   CARRY=.carry1 JOBS="long_avg3_42 ..." DEADLINE=320 bash tools/device_call.sh
#   CARRY=.carry2 TP=200 bash tools/device_call.sh             # MiniLM: the eager pairs alone
#   JOBS="jira_avg3_42 jira_1" DEADLINE=540 bash tools/device_call.sh   # nothing carried
#   CARRY=.carry1 CMD='python3 bench/scale.py --main --out $OUT/scale_gpu_e5.json' bash tools/device_call.sh
#
# A call is at most 600 s: unpacking (about 30 s), TP and DEADLINE must fit in it.
# CARRY: a folder made by `python tools/gpu_pack.py pack CARRY [--parts ...]`, with e5/ from
#   `python tools/e5_pack.py pack CARRY/e5` where the jobs train multilingual-e5-small; under
#   64 MiB with the repository, so an e5 round takes two (tools/gpu_pack.py's docstring). Parts
#   unpacked by an earlier call stay on the warm machine (30 s between calls).
# JOBS: job names of JOBFILE (default bench/jobs/quality_gpu_best_weights.txt), run with
#   bench/run_jobs.py until DEADLINE seconds (default 420).
# CMD: one command line after TP and before JOBS (bash -c, with this script's environment; its
#   output in $OUT/cmd.log, whose last lines are printed), e.g. a benchmark that writes to $OUT.
# TP: seconds for `bench/train_throughput.py --repeats 2` first (eager pairs, the default batch;
#   four fresh processes: about 120 s with MiniLM, 250 s with multilingual-e5-small), on the
#   encoder TP_ENC (an encoder_name or path; default /tmp/minilm).
# Back under $OUT: results.tgz (the result JSONs, jobs.json, the logs), one tar per folder of
# per-row probabilities (split in 15 MiB parts where larger), train_gpu_eager_repeats.json and
# throughput.log.
set -u
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPYCACHEPREFIX=/tmp/pyc PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# the device's copy of the tree has a .git of its own: name the commit sent, e.g.
# TICKETML_COMMIT=<git rev-parse HEAD here> CARRY=... bash tools/device_call.sh
[ -n "${TICKETML_COMMIT:-}" ] || echo "warning: TICKETML_COMMIT is not set: results will be stamped with the device copy's commit"
if [ -n "${CARRY:-}" ]; then  # none: what earlier calls unpacked on the warm machine
  python3 tools/gpu_pack.py unpack "$CARRY" >/tmp/unpack.log 2>&1 || { tail -20 /tmp/unpack.log; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD
if [ -n "${CARRY:-}" ] && [ -d "$CARRY/e5" ]; then
  python3 tools/e5_pack.py unpack "$CARRY/e5" >/tmp/e5.log 2>&1 || { tail -20 /tmp/e5.log; exit 1; }
fi
if [ -n "${TP:-}" ]; then
  timeout "$TP" python3 bench/train_throughput.py --device cuda --batch-sizes auto --epochs 4 \
    --repeats 2 --out "$OUT/train_gpu_eager_repeats.json" \
    "model.encoder_name=${TP_ENC:-/tmp/minilm}" >"$OUT/throughput.log" 2>&1
  echo "throughput: exit $? (124: stopped at ${TP} s)"
  grep -A12 "^training throughput" "$OUT/throughput.log"
fi
if [ -n "${CMD:-}" ]; then  # e.g. CMD='python3 bench/scale.py --main --out $OUT/scale.json'
  bash -c "$CMD" >"$OUT/cmd.log" 2>&1
  echo "cmd: exit $?"
  grep -v "INFO\|Warning" "$OUT/cmd.log" | tail -n 25
fi
[ -z "${JOBS:-}" ] && exit 0
out=/tmp/jobs_out
# shellcheck disable=SC2086 # JOBS is a list of names
python3 bench/run_jobs.py "${JOBFILE:-bench/jobs/quality_gpu_best_weights.txt}" \
  enc=/tmp/minilm jira=/tmp/data/jira.parquet support=/tmp/data/support.parquet \
  --out "$out" --deadline "${DEADLINE:-420}" --only $JOBS | tail -n 15
cd "$out" || exit 1
tar czf "$OUT/results.tgz" ./*.json logs
for d in probs_*; do
  [ -d "$d" ] || continue
  tar cf "/tmp/$d.tar" "$d"
  if [ "$(stat -c %s "/tmp/$d.tar")" -gt $((15 * 2 ** 20)) ]; then
    split -b 15M "/tmp/$d.tar" "$OUT/$d.tar.part-"
  else
    mv "/tmp/$d.tar" "$OUT/"
  fi
done
ls -la "$OUT"

#!/usr/bin/env bash
# One GPU session's graph-search check (issue: Coconut vs CoT on ProsQA in graph form): the paper
# recipes (configs/lm/paper/graph_{coconut,cot,nocot}_prosqa.yaml: GPT-2 2 x 768, batch 256,
# lr 1e-4; and coconut_soft, the Coconut recipe with soft thoughts taught the walk frontier) trained side by side on one GPU for EPOCHS epochs (default 120, stages of STAGE_EPOCHS =
# 10: the paper's 300 / 25 scaled to fit < 10 minutes), evaluated on the real ProsQA validation
# file in graph form (<= 4 hops), then collected with the superposition look. Writes to $OUT
# (default runs/gpu-out): graph_gpu.json, graph_gpu.md, logs.tar.gz.
#   OUT=runs/gpu-out bash bench/gpu_graph.sh             # on the GPU machine
#   TINY=1 OUT=/tmp/gg bash bench/gpu_graph.sh          # a CPU rehearsal of the same script (seconds)
set -u
OUT=${OUT:-runs/gpu-out}; mkdir -p "$OUT"
EPOCHS=${EPOCHS:-120}; STAGE_EPOCHS=${STAGE_EPOCHS:-10}; LIMIT=${LIMIT:-480}
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
RUNS=runs/gpu_graph; rm -rf "$RUNS"
EXTRA=(); SMALL=()
if [ "${TINY:-0}" = 1 ]; then
  EXTRA=(model.name_or_path=shallow-128 data.train_size=256 train.batch_size=32 train.save_every=0 train.eval_every=0 data.eval_size=32)
  EPOCHS=5; STAGE_EPOCHS=1; SMALL=(--generated 16 --diag 8)
else
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
for m in coconut coconut_soft cot nocot; do
  STAGES=(); [ "$m" = coconut ] && STAGES=("method.epochs_per_stage=$STAGE_EPOCHS")
  # coconut_soft: the soft thoughts taught the walk frontier (graph_matched_coconut_soft.yaml's options)
  [ "$m" = coconut_soft ] && STAGES=(method.frontier_nodes=walk method.thought_input=soft method.teacher_forcing=true)
  timeout "$LIMIT" $PY -m latentcot.cli train "configs/lm/paper/graph_${m%_soft}_prosqa.yaml" out_dir="$RUNS/$m" \
    train.epochs="$EPOCHS" train.eval_every=0 train.save_every=0 "${STAGES[@]}" "${EXTRA[@]}" \
    > "$RUNS.$m.log" 2>&1 &
done
wait
tail -n 3 "$RUNS".*.log
$PY bench/graph_study.py collect --runs "$RUNS" --out "$OUT/graph_gpu.json" --doc "$OUT/graph_gpu.md" \
  --label "one GPU, ${EPOCHS} epochs, stages of ${STAGE_EPOCHS}" --speed-repeats 3 "${SMALL[@]}"
tar czf "$OUT/logs.tar.gz" "$RUNS".*.log "$RUNS"/*/eval.json "$RUNS"/*/metrics.jsonl 2>/dev/null

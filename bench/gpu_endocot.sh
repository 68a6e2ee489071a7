#!/usr/bin/env bash
# One GPU session's EndoCoT study (plan $PLAN, default gpunb) and, with LM_CHECK=1, a bf16 check of
# two latent LM methods, run side by side on one GPU. Writes to $OUT (default runs/gpu-out):
# endocot_$PLAN.json/.md, latent_study_chain_gpu.json/.md, logs.tar.gz. Uses CUDA MPS when the
# machine allows it, so the launch-bound tiny models of several processes share the GPU without
# time-slicing.
#   OUT=runs/gpu-out PLAN=gpunb bash bench/gpu_endocot.sh
set -u
OUT=${OUT:-runs/gpu-out}; mkdir -p "$OUT"
PLAN=${PLAN:-gpunb}
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
if nvidia-cuda-mps-control -d 2>/dev/null && timeout 60 $PY -c "import torch; print(torch.ones(2, device='cuda').sum().item())"; then
  echo "MPS: on"
else
  echo quit | nvidia-cuda-mps-control 2>/dev/null; unset CUDA_MPS_PIPE_DIRECTORY; echo "MPS: off"
fi
LM=
if [ "${LM_CHECK:-0}" = 1 ]; then
$PY bench/latent_study.py --task chain --generator '{"length": 5}' --ks 8 --methods coconut,simcot-coconut \
  --steps 1500 --batch-size 64 --lr 1e-3 --train-size 3000 --eval-size 200 --diag-size 100 --curriculum 4 \
  --device cuda --jobs 2 --out "$OUT/latent_study_chain_gpu.json" --doc "$OUT/latent_study_chain_gpu.md" \
  > "$OUT/lm.log" 2>&1 &
LM=$!
fi
$PY bench/endocot_study.py sweep --plan "$PLAN" --runs "runs/$PLAN" --jobs 6
$PY bench/endocot_study.py collect --runs "runs/$PLAN" --out "$OUT/endocot_$PLAN.json" | tee "$OUT/endocot_$PLAN.md"
if [ -n "$LM" ]; then wait $LM; tail -n 5 "$OUT/lm.log"; fi
tar czf "$OUT/logs.tar.gz" "runs/$PLAN"/*.log "runs/$PLAN"/*/eval.json "runs/$PLAN"/*/metrics.jsonl "$OUT/lm.log" 2>/dev/null
rm -f "$OUT/lm.log"

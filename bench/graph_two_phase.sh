#!/usr/bin/env bash
# Graph search on the real ProsQA validation file in a 60-minute CPU budget per method: each method
# (soft-thought Coconut taught the walk frontier; CoT) trains 35 minutes on small generated graphs
# (8-12 nodes, distractor matched) whose node ids are spread over the real file's 0-27 (id_range: 28),
# then 25 minutes on ProsQA-size generated graphs (15-26 nodes, ids numbered as the real file does;
# 20,000 of them, the lr decaying linearly to 0 over the last 30% of the 25 minutes: schedule wsd)
# from that checkpoint; both evaluated on the real validation file in graph form (<= 4 hops) every
# 250 steps of phase 2, then collected (accuracy, generated accuracy by graph size, superposition).
#   SEED=0 RUNS=runs/two_phase bash bench/graph_two_phase.sh     # two runs side by side, 1 thread each
#   TINY=1 RUNS=/tmp/tp bash bench/graph_two_phase.sh            # a rehearsal in seconds
#   PHASE1_FROM=runs/two_phase_s0/phase1 SEED=0 RUNS=runs/x bash bench/graph_two_phase.sh
#                                 # phase 2 only, from phase-1 runs of the same seed (folders coconut/, cot/)
#   P2_DISTRACTOR=mixed ... bash bench/graph_two_phase.sh   # phase-2 graphs: half matched, half real-shaped
#   METHODS=nocot SEED=0 RUNS=runs/x bash bench/graph_two_phase.sh  # no-CoT through the same two phases
set -eu
SEED=${SEED:-0}; RUNS=${RUNS:-runs/two_phase_s$SEED}
P1=${P1:-2100}; P2=${P2:-1500}  # seconds of training in each phase (60 minutes together)
P2_DISTRACTOR=${P2_DISTRACTOR:-matched}  # phase-2 graphs' distractor: matched, real or mixed (half of each)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
EXTRA=(); SMALL=(--generated 500 --sizes 8-12,13-16,17-20,21-26)
if [ "${TINY:-0}" = 1 ]; then
  EXTRA=(data.train_size=64 train.batch_size=16 data.eval_size=16); P1=8; P2=8; SMALL=(--generated 16 --diag 8 --sizes 8-12)
fi
mkdir -p "$RUNS"
phases() {  # method recipe
  local start=${PHASE1_FROM:-$RUNS/phase1}
  [ -n "${PHASE1_FROM:-}" ] || $PY -m latentcot.cli train "$2" seed="$SEED" out_dir="$RUNS/phase1/$1" \
    "data.generator={min_nodes: 8, max_nodes: 12, distractor: matched, id_range: 28}" \
    data.eval_file=prosqa/prosqa_valid.json data.eval_size=0 train.max_steps=100000 train.max_seconds="$P1" \
    "${EXTRA[@]}" > "$RUNS/phase1_$1.log" 2>&1
  $PY -m latentcot.cli train "$2" seed="$SEED" out_dir="$RUNS/$1" model.init_from="$start/$1" \
    "data.generator={distractor: $P2_DISTRACTOR}" data.train_size=20000 train.schedule=wsd train.decay_fraction=0.3 \
    data.eval_file=prosqa/prosqa_valid.json data.eval_size=0 \
    train.max_steps=100000 train.max_seconds="$P2" train.eval_every=250 train.save_every=250 \
    "${EXTRA[@]}" > "$RUNS/phase2_$1.log" 2>&1
}
for m in ${METHODS:-coconut cot}; do  # METHODS=nocot (or "coconut cot nocot", three runs on the cores) adds no-CoT
  case $m in
    coconut) phases coconut configs/lm/tiny/graph_matched_coconut_soft.yaml & ;;
    cot|nocot) phases "$m" "configs/lm/tiny/graph_matched_$m.yaml" & ;;
    *) echo "METHODS: coconut, cot or nocot, not $m" >&2; exit 2 ;;
  esac
done
wait
$PY bench/graph_study.py collect --runs "$RUNS" --out "$RUNS/graph_two_phase.json" --doc "$RUNS/graph_two_phase.md" \
  --speed-repeats 0 --label "CPU, seed $SEED: $((P1 / 60)) minutes on small graphs with spread ids, then the steps and minutes below on ProsQA-size graphs, per method" "${SMALL[@]}"

#!/usr/bin/env bash
# The SPoT workflow on the shipped data (README, "SPoT"), end to end, with its measurement:
#   1. source prompts: Shakespeare's first half (a related task) and TinyStories (an unrelated one);
#   2. the target task (Shakespeare's second half): a short prompt, 50 steps;
#   3. peft-similarity ranks the library against it;
#   4. the target trained for 300 steps from a random init, from the best-ranked source, from the unrelated one
#      and from the similarity-weighted average; held-out loss every 25 steps, and the steps each needs to
#      reach the random init's final loss.
# Needs build/ (scripts/build.sh). Writes runs/spot/. About 3 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}  # where peft-train and peft-similarity are
out=runs/spot
mkdir -p "$out/data" "$out/library"
head -n 17762 third_party/tinyshakespeare/train.txt > "$out/data/shakespeare_a.txt"
tail -n +17763 third_party/tinyshakespeare/train.txt > "$out/data/shakespeare_b.txt"

train() {  # name, then overrides
  local name=$1
  shift
  "$bin/peft-train" --config configs/spot_prompt.yaml "output.dir=$out/$name" "$@" > "$out/$name.log" 2>&1 ||
    { cat "$out/$name.log"; exit 1; }
}

echo "1. source prompts"
train library/shakespeare_a data.train=$out/data/shakespeare_a.txt
train library/tinystories data.train=third_party/tinystories_sample/stories.txt
echo "2. the target task's short prompt (50 steps)"
train target_short data.train=$out/data/shakespeare_b.txt train.max_steps=50
echo "3. ranking"
"$bin/peft-similarity" --target "$out/target_short" --library "$out/library"
best=$("$bin/peft-similarity" --target "$out/target_short" --library "$out/library" | awk 'NR == 2 {print $4}')
echo "4. the target task, 300 steps, four initialisations"
train target_random data.train=$out/data/shakespeare_b.txt
train target_best data.train=$out/data/shakespeare_b.txt "peft.init_from=$best"
train target_unrelated data.train=$out/data/shakespeare_b.txt "peft.init_from=$out/library/tinystories"
train target_weighted data.train=$out/data/shakespeare_b.txt \
  "peft.init_from=[$out/library/shakespeare_a, $out/library/tinystories]" "peft.target_prompt=$out/target_short"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
runs = ["target_random", "target_best", "target_unrelated", "target_weighted"]
curves = {}
for run in runs:
    with open(f"{out}/{run}/train_log.jsonl") as f:
        curves[run] = [(r["step"], r["eval_loss"]) for r in map(json.loads, f) if "eval_loss" in r]
goal = curves["target_random"][-1][1]
print(f"\nheld-out loss by step; goal = the random init's final loss {goal:.4f}")
print("step  " + "  ".join(f"{run[7:]:>9}" for run in runs))
for i, (step, _) in enumerate(curves["target_random"]):
    print(f"{step:>4}  " + "  ".join(f"{curves[run][i][1]:9.4f}" for run in runs))
for run in runs:
    reached = next((step for step, loss in curves[run] if loss <= goal), None)
    print(f"{run[7:]:>9}: reaches {goal:.4f} at step {reached}")
PY

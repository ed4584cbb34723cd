#!/usr/bin/env bash
# The LoRA variants side by side (README, "LoRA variants"):
#   1. the quick start's budget (configs/quickstart.yaml: stories260K -> Tiny Shakespeare, 300 steps, seed 42) with
#      plain LoRA, rsLoRA, DoRA, PiSSA and LoRA+: held-out loss before and after, and the mean optimiser step time;
#   2. DoRA against LoRA on peft-bench's random 58M-parameter Llama shape: step time and peak RSS, one process per
#      method (peak RSS is per process), ratios DoRA / LoRA within this run.
# Needs build/ (scripts/build.sh). Writes runs/bench_lora_variants/. About 6 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}
out=runs/bench_lora_variants
mkdir -p "$out"

echo "1. the quick start's budget, one run per variant"
declare -A variants=(
  [lora]=""
  [rslora]="peft.use_rslora=true"
  [dora]="peft.use_dora=true"
  [pissa]="peft.init_lora_weights=pissa"
  [loraplus]="train.loraplus_lr_ratio=16"
)
for name in lora rslora dora pissa loraplus; do
  # shellcheck disable=SC2086
  "$bin/peft-train" --config configs/quickstart.yaml "output.dir=$out/$name" train.eval_every=0 \
    ${variants[$name]} > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print(f"   {'variant':9} {'held-out loss':>22} {'mean step':>10}")
for name in ("lora", "rslora", "dora", "pissa", "loraplus"):
    lines = [json.loads(line) for line in open(f"{out}/{name}/train_log.jsonl")]
    done = next(l for l in lines if l.get("event") == "done")
    print(f"   {name:9} {done['base_eval_loss']:9.4f} -> {done['final_eval_loss']:7.4f}   "
          f"{1000 * done['train_seconds'] / done['steps']:7.1f} ms")
PY

shape=${LORA_BENCH_SHAPE:-"--layers 8 --hidden 512 --intermediate 1376 --vocab 32000 --batch 8 --length 256"}
echo "2. DoRA against LoRA ($shape)"
field() { grep "^$2" "$1" | sed -E 's/^[^0-9]*([0-9.]+).*/\1/'; }
for method in lora dora; do
  # shellcheck disable=SC2086
  "$bin/peft-bench" --method $method --naive-loss-too false --steps 5 $shape > "$out/bench_$method.txt"
  printf '   %-5s step %6.3f s   peak RSS %6.0f MB\n' "$method" \
    "$(field "$out/bench_$method.txt" 'step time')" "$(field "$out/bench_$method.txt" 'peak RSS')"
done
awk -v a="$(field "$out/bench_dora.txt" 'step time')" -v b="$(field "$out/bench_lora.txt" 'step time')" \
  -v c="$(field "$out/bench_dora.txt" 'peak RSS')" -v d="$(field "$out/bench_lora.txt" 'peak RSS')" \
  'BEGIN { printf "   DoRA / LoRA: step time %.2f, peak RSS %.2f\n", a / b, c / d }'

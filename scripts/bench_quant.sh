#!/usr/bin/env bash
# The quantized base (README, "Quantized base"): LoRA on a float32, bfloat16, int8 and NF4 base.
#   1. the quick start's budget (configs/quickstart.yaml: stories260K -> Tiny Shakespeare, 300 steps, seed 42):
#      the base's weights in memory, peak RSS, tokens/s and the held-out loss after training, one run each;
#   2. peft-bench's random 58M-parameter Llama shape with gradient checkpointing, one process each (peak RSS is per
#      process): weights' memory, peak RSS, tokens/s and the share of step time spent dequantizing, as ratios to
#      the float32 base within this run.
# Needs build/ (scripts/build.sh). Writes runs/bench_quant/. About 10 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}
out=runs/bench_quant
mkdir -p "$out"

names=(float32 bfloat16 int8 nf4 nf4_double nf4_bf16)
declare -A settings=(
  [float32]="model.dtype=float32"
  [bfloat16]="model.dtype=bfloat16"
  [int8]="model.quantize=int8"
  [nf4]="model.quantize=nf4"
  [nf4_double]="model.quantize=nf4 model.double_quant=true"
  [nf4_bf16]="model.quantize=nf4 model.dtype=bfloat16"
)
echo "1. the quick start's budget, one run per base"
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  "$bin/peft-train" --config configs/quickstart.yaml "output.dir=$out/$name" train.eval_every=0 \
    ${settings[$name]} > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
done
python3 - "$out" "${names[@]}" <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
rows = {}
for name in names:
    lines = [json.loads(line) for line in open(f"{out}/{name}/train_log.jsonl")]
    done = next(l for l in lines if l.get("event") == "done")
    steps = [l for l in lines if "peak_memory_bytes" in l]
    rows[name] = (done["base_weight_bytes"] / 1e6, max(l["peak_memory_bytes"] for l in steps) / 1e6,
                  steps[-1]["tokens_per_second"], done["base_eval_loss"], done["final_eval_loss"])
f32 = rows["float32"]
print(f"   {'base':11} {'weights MB':>10} {'peak MB':>8} {'tokens/s':>9} {'held-out loss':>22}  vs float32: "
      f"weights, peak, tokens/s, loss")
for name, (weights, peak, rate, before, after) in rows.items():
    print(f"   {name:11} {weights:10.2f} {peak:8.0f} {rate:9.0f} {before:9.4f} -> {after:7.4f}       "
          f"{weights / f32[0]:.3f} {peak / f32[1]:.2f} {rate / f32[2]:.2f} {after / f32[4]:.4f}")
PY

shape=${QUANT_BENCH_SHAPE:-"--layers 8 --hidden 512 --intermediate 1376 --vocab 32000 --batch 8 --length 256"}
echo "2. peft-bench, LoRA r=8 on q,k,v,o, gradient checkpointing ($shape)"
declare -A bench=(
  [float32]="--dtype float32"
  [bfloat16]="--dtype bfloat16"
  [int8]="--quantize int8"
  [nf4]="--quantize nf4"
  [nf4_double]="--quantize nf4 --double-quant true"
  [nf4_bf16]="--quantize nf4 --dtype bfloat16"
)
field() { grep "^$2" "$1" | head -1 | sed -E 's/^[^0-9]*([0-9.]+).*/\1/'; }
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  "$bin/peft-bench" --method lora --naive-loss-too false --steps 3 --gradient-checkpointing true $shape \
    ${bench[$name]} > "$out/bench_$name.txt"
done
printf '   %-11s %10s %12s %8s %9s %12s   %s\n' base "weights MB" "projections" "peak MB" tokens/s dequantizing \
  "vs float32: weights, projections, peak, tokens/s"
for name in "${names[@]}"; do
  f="$out/bench_$name.txt"
  share=$(field "$f" dequantizing || true); share=${share:--}
  awk -v n="$name" -v w="$(field "$f" 'base weights')" -v p="$(grep '^base weights' "$f" | sed -E 's/.*projections ([0-9.]+) MB.*/\1/')" \
    -v r="$(field "$f" 'peak RSS')" -v t="$(field "$f" 'tokens/s')" -v s="$share" \
    -v w0="$(field "$out/bench_float32.txt" 'base weights')" \
    -v p0="$(grep '^base weights' "$out/bench_float32.txt" | sed -E 's/.*projections ([0-9.]+) MB.*/\1/')" \
    -v r0="$(field "$out/bench_float32.txt" 'peak RSS')" -v t0="$(field "$out/bench_float32.txt" 'tokens/s')" \
    'BEGIN { printf "   %-11s %10.1f %12.1f %8.0f %9.0f %11s%%   %.3f %.3f %.2f %.2f\n", n, w, p, r, t, s, w / w0, p / p0, r / r0, t / t0 }'
done

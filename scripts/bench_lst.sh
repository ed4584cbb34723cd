#!/usr/bin/env bash
# Ladder Side-Tuning's two measured claims (README, "Ladder Side-Tuning"):
#   1. memory and step time against LoRA: peft-bench on the same random Llama-shaped model, batch and length,
#      one process per method (peak RSS is per process); ratios are LST / LoRA within this run; and LST's step
#      when the backbone's states come from the cache;
#   2. cache_backbone: three epochs of configs/lst.yaml on a slice of Tiny Shakespeare with the cache and
#      without; each epoch's time from the training log's elapsed_seconds, and the largest loss difference.
# Needs build/ (scripts/build.sh). Writes runs/bench_lst/. About 5 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}
out=runs/bench_lst
mkdir -p "$out"
shape=${LST_BENCH_SHAPE:-"--layers 8 --hidden 512 --intermediate 1376 --vocab 32000 --batch 8 --length 256"}

field() { grep "^$2" "$1" | sed -E 's/^[^0-9]*([0-9.]+).*/\1/'; }
echo "1. LST against LoRA ($shape)"
# shellcheck disable=SC2086
"$bin/peft-bench" --method lora --naive-loss-too false --steps 5 $shape > "$out/lora.txt"
# shellcheck disable=SC2086
"$bin/peft-bench" --method lst --naive-loss-too false --steps 5 $shape > "$out/lst.txt"
# shellcheck disable=SC2086
"$bin/peft-bench" --method lst --cache-backbone true --naive-loss-too false --steps 5 $shape > "$out/lst_cached.txt"
for method in lora lst lst_cached; do
  printf '   %-10s step %6.3f s   peak RSS %6.0f MB   trainable %s\n' "$method" \
    "$(field "$out/$method.txt" 'step time')" "$(field "$out/$method.txt" 'peak RSS')" \
    "$(grep '^base parameters' "$out/$method.txt" | sed -E 's/.*trainable //')"
done
awk -v a="$(field "$out/lst.txt" 'step time')" -v b="$(field "$out/lora.txt" 'step time')" \
  -v c="$(field "$out/lst.txt" 'peak RSS')" -v d="$(field "$out/lora.txt" 'peak RSS')" -v w="$(
    grep '^peak RSS' "$out/lora.txt" | sed -E 's/.*base weights ([0-9]+).*/\1/')" \
  'BEGIN { printf "   LST / LoRA: step time %.2f, peak RSS %.2f, peak RSS above the base weights (%d MB) %.2f\n",
           a / b, c / d, w, (c - w) / (d - w) }'
awk -v a="$(field "$out/lst_cached.txt" 'step time')" -v b="$(field "$out/lst.txt" 'step time')" \
  'BEGIN { printf "   LST step with the backbone from the cache / without: %.2f\n", a / b }'

echo "2. cache_backbone: three epochs"
head -c 150000 third_party/tinyshakespeare/train.txt > "$out/slice.txt"
for cache in false true; do
  "$bin/peft-train" --config configs/lst.yaml "output.dir=$out/cache_$cache" "data.train=$out/slice.txt" \
    train.epochs=3 train.max_steps=0 train.eval_every=0 "peft.cache_backbone=$cache" > "$out/cache_$cache.log" 2>&1 ||
    { cat "$out/cache_$cache.log"; exit 1; }
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
runs = {}
for cache in ("false", "true"):
    steps = [json.loads(line) for line in open(f"{out}/cache_{cache}/train_log.jsonl") if '"epoch"' in line]
    ends = [0.0] + [max(s["elapsed_seconds"] for s in steps if s["epoch"] == e) for e in (0, 1, 2)]
    runs[cache] = ([b - a for a, b in zip(ends, ends[1:])], [s["loss"] for s in steps])
for cache, (times, _) in runs.items():
    print(f"   cache_backbone {cache:5}: epochs " + ", ".join(f"{t:6.2f} s" for t in times) +
          f" (epochs 2 and 3 / epoch 1 = {times[1] / times[0]:.2f}, {times[2] / times[0]:.2f})")
diff = max(abs(a - b) for a, b in zip(runs["false"][1], runs["true"][1]))
print(f"   largest loss difference between the two runs: {diff:.2e} over {len(runs['true'][1])} steps")
PY
grep "backbone cache" "$out/cache_true.log" | sed -E 's/^.*\] /   /'

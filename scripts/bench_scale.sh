#!/usr/bin/env bash
# Issue 9's CPU measurements: LoRA on a random ~27M-parameter Llama-shaped model (6 layers, d 512, ff 1376,
# vocabulary 8000, untied) on examples of random lengths (32-256 tokens), batch 8, with and without sequence
# packing and activation checkpointing. One peft-bench process per configuration (peak RSS is per process).
# Prints tokens/s (real tokens), peak RSS, achieved GFLOP/s against this machine's fp32 matrix-product rate, and
# each configuration's ratios to the plain one within this run. Needs build/ (scripts/build.sh). Writes
# runs/bench_scale/. About 4 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}
out=runs/bench_scale
mkdir -p "$out"
shape=${SCALE_BENCH_SHAPE:-"--layers 6 --hidden 512 --intermediate 1376 --vocab 8000 --batch 8 --length 256 --min-length 32"}
steps=${SCALE_BENCH_STEPS:-4}

field() { grep "^$2" "$1" | sed -E 's/^[^0-9]*([0-9.]+).*/\1/'; }
for name in plain packing checkpointing both; do
  packing=false checkpointing=false
  [[ $name == packing || $name == both ]] && packing=true
  [[ $name == checkpointing || $name == both ]] && checkpointing=true
  # shellcheck disable=SC2086
  "$bin/peft-bench" --method lora --naive-loss-too false --steps "$steps" --packing $packing \
    --gradient-checkpointing $checkpointing $shape > "$out/$name.txt"
done
head -1 "$out/plain.txt"
grep -h "^fp32 matmul" "$out"/*.txt | sort -t" " -k5 -n | tail -1
printf '   %-14s %10s %8s %11s %16s %16s\n' configuration tokens/s "peak MB" "GFLOP/s" "tokens/s ratio" "peak RSS ratio"
for name in plain packing checkpointing both; do
  file=$out/$name.txt
  printf '   %-14s %10.0f %8.0f %11s %16.2f %16.2f\n' "$name" "$(field "$file" 'tokens/s')" \
    "$(field "$file" 'peak RSS')" "$(grep '^achieved' "$file" | sed -E 's/^achieved *([0-9.]+) GFLOP\/s = ([0-9]+)%.*/\1 (\2%)/')" \
    "$(awk -v a="$(field "$file" 'tokens/s')" -v b="$(field "$out/plain.txt" 'tokens/s')" 'BEGIN { print a / b }')" \
    "$(awk -v a="$(field "$file" 'peak RSS')" -v b="$(field "$out/plain.txt" 'peak RSS')" 'BEGIN { print a / b }')"
done
for name in plain packing; do grep -h '^tokens/s' "$out/$name.txt" | sed -E "s/^tokens\/s */   $name: /"; done

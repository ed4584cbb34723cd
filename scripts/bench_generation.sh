#!/usr/bin/env bash
# Generation speed (README, "Generation"): greedy tokens/s of peft-eval --prompt on the embedded stories260K, with
# the KV cache and with the uncached reference path (--no-kv-cache, the whole sequence re-run per token), at 50,
# 200 and 400 new tokens, one run each in this one invocation; then 8 prompts as one batch. Prints the ratios and
# checks that both paths printed the same text. Needs build/ (scripts/build.sh). About 30 s on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}
model=third_party/stories260K-hf
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

rate() {  # tokens/s from peft-eval's "generated N token(s) in S s (R tokens/s, ...)" line
  sed -n 's/^generated \([0-9]*\) token(s) in \([0-9.]*\) s (\([0-9]*\) tokens\/s.*/\1 \2 \3/p' "$1"
}
printf '%-22s %14s %14s %8s\n' "new tokens" "cached tok/s" "uncached tok/s" "ratio"
for n in 50 200 400; do
  for mode in cached uncached; do
    flag=""; [ "$mode" = uncached ] && flag=--no-kv-cache
    # shellcheck disable=SC2086
    "$bin/peft-eval" --model "$model" --prompt "Once upon a time" --max-new-tokens "$n" $flag \
      > "$out/$mode.txt" 2> "$out/$mode.err"
  done
  cmp -s "$out/cached.txt" "$out/uncached.txt" || { echo "cached and uncached text differ at $n tokens"; exit 1; }
  read -r _ _ cached < <(rate "$out/cached.err")
  read -r _ _ uncached < <(rate "$out/uncached.err")
  printf '%-22s %14s %14s %7.1fx\n' "$n (one prompt)" "$cached" "$uncached" "$(awk -v a="$cached" -v b="$uncached" 'BEGIN { print a / b }')"
done
prompts=()
for p in "Once upon a time" "The little dog" "One day, Lily" "Tom and Sue" "The sun was" "A big bird" \
  "Mom said" "In the park"; do prompts+=(--prompt "$p"); done
for mode in cached uncached; do
  flag=""; [ "$mode" = uncached ] && flag=--no-kv-cache
  # shellcheck disable=SC2086
  "$bin/peft-eval" --model "$model" "${prompts[@]}" --max-new-tokens 200 $flag > "$out/$mode.txt" 2> "$out/$mode.err"
done
cmp -s "$out/cached.txt" "$out/uncached.txt" || { echo "cached and uncached batch text differ"; exit 1; }
read -r _ _ cached < <(rate "$out/cached.err")
read -r _ _ uncached < <(rate "$out/uncached.err")
printf '%-22s %14s %14s %7.1fx\n' "8 x 200 (one batch)" "$cached" "$uncached" "$(awk -v a="$cached" -v b="$uncached" 'BEGIN { print a / b }')"

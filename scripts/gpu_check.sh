#!/usr/bin/env bash
# The GPU check: builds the tools against the CUDA PyTorch of a GPU machine, trains every method there, and
# compares LoRA with Hugging Face transformers + PEFT on one random 0.5B Llama. Prints a summary; each step's log is
# under runs/gpu_check/. Made to finish in well under 10 minutes of GPU time.
#
#   scripts/gpu_check.sh --download-debs   here (with apt): fetch the Debian -dev packages the build needs into
#                                          .gpu/debs/ (ignored by git) for a machine without apt or network
#   scripts/gpu_check.sh [--steps N]       on the GPU machine: unpack .gpu/debs/ with dpkg -x, build build-gpu/,
#                                          then the checks below with model.device=cuda
#   scripts/gpu_check.sh --cpu-dry-run     the same checks on the CPU with build/ and stories260K (CI runs it)
#
# The checks: (1) every method trains on the device (the quick start's config, a few steps) and its held-out loss
# equals the CPU's within 1e-3 relative; (2) greedy generation with the KV cache prints the same text on the device
# as on the CPU; (3) LoRA on the random Llama (scripts/gpu_check/make_model.py): the tool and HF PEFT on the same
# tokens, tokens/s, peak device memory, loss, and the tool's adapter loaded by PeftModel.from_pretrained gives
# the same per-example held-out losses as peft-eval. Without transformers/peft (the dry run in CI) step 3 trains
# the tool only and says that the HF side was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=gpu steps=30 debs=.gpu/debs
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry-run) mode=cpu ;;
    --download-debs) mode=download ;;
    --steps) steps=${2:?--steps needs a number}; shift ;;
    --debs) debs=${2:?--debs needs a directory}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Headers and libraries the build needs besides LibTorch (the GPU machine's PyTorch provides that).
dev_packages=(libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libyaml-cpp-dev libyaml-cpp0.7
  libsentencepiece-dev libsentencepiece0 nlohmann-json3-dev libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0
  libpcre2-posix3 libutf8proc-dev libutf8proc2 libgtest-dev)
if [ "$mode" = download ]; then
  mkdir -p "$debs"
  (cd "$debs" && apt-get download "${dev_packages[@]}")
  echo "gpu_check: $(ls "$debs" | wc -l) package(s) in $debs; carry it to the GPU machine with the working tree"
  exit 0
fi

out=runs/gpu_check
rm -rf "$out" && mkdir -p "$out"
note() { printf '%s\n' "$*" | tee -a "$out/summary.txt"; }

if [ "$mode" = gpu ]; then
  device=cuda
  command -v nvidia-smi > /dev/null || { echo "gpu_check: no nvidia-smi here; use --cpu-dry-run" >&2; exit 1; }
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  prefix=$PWD/.gpu/prefix
  if ! command -v apt-get > /dev/null || [ -d "$debs" ]; then
    ls "$debs"/*.deb > /dev/null 2>&1 || { echo "gpu_check: no .deb files in $debs (run --download-debs where apt works)" >&2; exit 1; }
    rm -rf "$prefix" && mkdir -p "$prefix"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$prefix"; done
  fi
  libdir=$prefix/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_PATH=$libdir/pkgconfig:$prefix/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$prefix
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  bin=build-gpu
  started=$(date +%s)
  cmake -S . -B "$bin" -DCMAKE_BUILD_TYPE=Release -DPEFT_BUILD_TESTS=OFF \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build "$bin" -j"$(nproc)" --target peft-train peft-eval peft-tokenize > "$out/build.log" 2>&1 ||
    { grep -m 20 -E "error|Error" "$out/build.log"; exit 1; }
  note "build: $(($(date +%s) - started)) s against $torch_prefix"
else
  device=cpu
  bin=${PEFT_BUILD_DIR:-build}
  steps=${steps:-30}
  [ "$steps" -gt 6 ] && steps=6
  for tool in peft-train peft-eval peft-tokenize; do
    [ -x "$bin/$tool" ] || { echo "gpu_check: $bin/$tool is missing (scripts/build.sh)" >&2; exit 1; }
  done
  note "cpu dry run with $bin"
fi

loss_of() { sed -n 's/^held-out loss: .* -> \([0-9.]*\) (adapted).*/\1/p' "$1" | tail -1; }
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * (b < 0 ? -b : b) + 1e-6) }'; }

# 1. Every method (its configs/ file, a few steps) on the device against the CPU.
methods=("quickstart" "quickstart peft.use_dora=true" "ia3" "adapter_houlsby" "adapter_parallel" "prompt_tuning"
  "prefix_tuning" "mam" "lst" "bitfit" "full")
failed=0
for i in "${!methods[@]}"; do
  run() {  # run DEVICE: train the method a few steps; prints its held-out loss
    local config=${methods[$i]%% *} extra=${methods[$i]#"${methods[$i]%% *}"}
    # shellcheck disable=SC2086
    "$bin/peft-train" --config "configs/$config.yaml" $extra model.device="$1" train.max_steps=$steps \
      train.eval_every=0 train.warmup_steps=1 output.dir="$out/method$i-$1" > "$out/method$i-$1.log" 2>&1 ||
      { echo "gpu_check: ${methods[$i]} failed on $1:" >&2; tail -3 "$out/method$i-$1.log" >&2; return 1; }
    loss_of "$out/method$i-$1.log"
  }
  on_device=$(run "$device") || { failed=1; continue; }
  reference=$on_device
  [ "$device" != cpu ] && { reference=$(run cpu) || { failed=1; continue; }; }
  if close "$on_device" "$reference"; then verdict=ok; else verdict=DIFFERS; failed=1; fi
  note "$(printf '1. %-50s %s %s, cpu %s: %s' "${methods[$i]}" "$device" "$on_device" "$reference" "$verdict")"
done

# 2. Generation with the KV cache, device against CPU.
generate() {
  "$bin/peft-eval" --model third_party/stories260K-hf --prompt "Once upon a time" --max-new-tokens 200 --device "$1" \
    > "$out/generate-$1.txt" 2> "$out/generate-$1.err"
}
generate "$device" && generate cpu
if cmp -s "$out/generate-$device.txt" "$out/generate-cpu.txt"; then verdict=same; else verdict=DIFFERS; failed=1; fi
note "2. greedy generation, 200 tokens: $(tail -1 "$out/generate-$device.err"); text on $device and cpu: $verdict"

# 3. LoRA on the random Llama: the tool and HF PEFT.
if [ "$mode" = gpu ]; then
  model=$out/random-llama
  python3 scripts/gpu_check/make_model.py "$model" | tee -a "$out/summary.txt"
  dtype=bfloat16
else
  model=third_party/stories260K-hf
  dtype=float32
fi
"$bin/peft-tokenize" --model "$model" --file third_party/tinyshakespeare/train.txt > "$out/train_ids.json"
"$bin/peft-tokenize" --model "$model" --file third_party/tinyshakespeare/eval.txt > "$out/eval_ids.json"
sampler=""
if [ "$mode" = gpu ]; then  # the device memory in use, sampled while the tool trains
  (while sleep 0.2; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; done) > "$out/memory.txt" &
  sampler=$!
fi
lora_settings="model.path=$model model.dtype=$dtype model.device=$device train.max_steps=$steps train.eval_every=0
  train.warmup_steps=3 train.log_every=1 output.dir=$out/lora"
# shellcheck disable=SC2086
"$bin/peft-train" --config configs/quickstart.yaml $lora_settings > "$out/lora.log" 2>&1 ||
  { tail -5 "$out/lora.log"; [ -n "$sampler" ] && kill "$sampler"; exit 1; }
[ -n "$sampler" ] && kill "$sampler"
tool_rate=$(sed -n 's/.*| \([0-9]*\) tok\/s |.*/\1/p' "$out/lora.log" | tail -1)
tool_memory=$([ -s "$out/memory.txt" ] && sort -n "$out/memory.txt" | tail -1 || echo "n/a")
note "3. tool LoRA on $model ($dtype, $steps steps): $tool_rate tokens/s, peak device memory ${tool_memory} MiB" \
  "(nvidia-smi, the whole device), held-out loss $(loss_of "$out/lora.log")"
"$bin/peft-eval" --model "$model" --adapter "$out/lora" --data third_party/tinyshakespeare/eval.txt --max-length 128 \
  --device "$device" --per-example "$out/tool_per_example.jsonl" > "$out/tool_eval.log" 2>&1
if python3 -c 'import torch, transformers, peft' 2> /dev/null; then
  python3 scripts/gpu_check/hf_lora.py --model "$model" --train-ids "$out/train_ids.json" \
    --eval-ids "$out/eval_ids.json" --steps "$steps" --dtype "$dtype" --device "$device" --adapter "$out/lora" \
    --tool-per-example "$out/tool_per_example.jsonl" --out "$out/hf.json" > "$out/hf.log" 2>&1 ||
    { tail -5 "$out/hf.log"; exit 1; }
  note "3. HF PEFT: $(cat "$out/hf.json" | tr -d '\n ' )"
  worst=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tool_adapter_in_peft_max_relative_loss_difference"])' "$out/hf.json")
  awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' || { note "3. the tool's adapter in PEFT DIFFERS: $worst"; failed=1; }
else
  note "3. HF side skipped: python3 cannot import torch, transformers and peft here"
fi
[ "$failed" -eq 0 ] && note "gpu_check: all checks passed" || { note "gpu_check: some checks FAILED"; exit 1; }

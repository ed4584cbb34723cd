#!/usr/bin/env bash
# Fuzzes every reader of untrusted input (fuzz/): builds the libFuzzer targets into build-sanitize/ (clang,
# AddressSanitizer, UndefinedBehaviorSanitizer; scripts/configure_sanitize.sh), runs each for SECONDS on a fresh
# copy of its seed corpus (fuzz/corpus/<target>, never written to) and prints each one's run time, executions and
# exec/s. Exits non-zero on any finding (crash, sanitizer report, uncaught exception, leak, timeout, an allocation
# over 2 GB), printing the input that reproduces it: rerun it with build-sanitize/fuzz/<target> <input>.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]   (JOBS=N caps the build's parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C  # a decimal point in $EPOCHREALTIME
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_safetensors fuzz_adapter_config fuzz_run_config fuzz_data_readers)

scripts/configure_sanitize.sh
cmake --build build-sanitize -j"${JOBS:-$(nproc)}" --target "${targets[@]}"

# Inputs no longer than these (bytes): room for every seed and its mutations, small enough to stay fast.
declare -A max_len=([fuzz_safetensors]=8192 [fuzz_adapter_config]=4096 [fuzz_run_config]=4096
                    [fuzz_data_readers]=4096)
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export OMP_NUM_THREADS=1  # one input at a time; thread pools would only add noise

work=build-sanitize/fuzz-work
failed=()
summary=()
for target in "${targets[@]}"; do
  dir=$work/$target
  rm -rf "$dir"
  mkdir -p "$dir/artifacts"
  cp -r "fuzz/corpus/$target" "$dir/corpus"
  dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=(-dict="fuzz/dict/$target.dict")
  scratch=/dev/shm/peft-fuzz-$target-$$  # the target writes each input there (in memory) before reading it
  [ -d /dev/shm ] || scratch=$dir/scratch
  echo "fuzz: $target for ${seconds}s (log: $dir/log.txt)"
  start=$EPOCHREALTIME
  status=0
  PEFT_FUZZ_SCRATCH=$scratch "build-sanitize/fuzz/$target" "$dir/corpus" -max_total_time="$seconds" \
    -max_len="${max_len[$target]:-4096}" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "${dict[@]}" >"$dir/log.txt" 2>&1 || status=$?
  rm -rf "$scratch"
  elapsed=$(awk "BEGIN { print $EPOCHREALTIME - $start }")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log.txt" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log.txt" | tail -1)
  summary+=("$(printf '%-22s %8.1f s %12s execs %8s exec/s' "$target" "$elapsed" "${runs:-?}" "${rate:-?}")")
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz: FINDING in $target (exit status $status):"
    grep -aE '^(==[0-9]+== ?ERROR|SUMMARY|.*runtime error:|terminate called|  what\(\)|peft::Error message)' \
      "$dir/log.txt" | head -5 | sed 's/^/  /' || true
    sed -n 's/.*Test unit written to \(.*\)$/  input: \1/p' "$dir/log.txt"
  fi
done

echo
echo "fuzz: summary (time, executions, exec/s)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}; each log is build-sanitize/fuzz-work/<target>/log.txt"
  exit 1
fi
echo "fuzz: no findings"

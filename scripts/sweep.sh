#!/usr/bin/env bash
# Hyper-parameter sweep: every point of a grid (and/or a list) of section.key=value overrides over a base config
# is trained with peft-train and evaluated with peft-eval in its own directory; the results are gathered into one
# CSV and Markdown table sorted by the chosen metric, naming the best point.
#
#   scripts/sweep.sh --config configs/quickstart.yaml --out runs/sweep \
#       --grid peft.r=4,8,16 --grid train.learning_rate=1e-3,3e-3 [--point "peft.r=32 train.learning_rate=1e-4"] \
#       [--set train.threads=1] [--jobs 2] [--metric loss] [--eval-data FILE] [--bin build] [-- peft-eval arguments]
#
# A point is finished when its directory holds DONE (written last, atomically); re-running the same command skips
# finished points, so an interrupted sweep continues where it stopped. Ctrl-C (or SIGTERM) stops the running points
# and leaves the finished ones intact. Every point is checked first (peft-train --dry-run), so an override naming
# no config key fails before anything trains.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "sweep: $*" >&2; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build"
config="" out="" jobs=1 metric="" eval_data=""
grids=() points=() eval_extra=() fixed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --grid) grids+=("$2"); shift 2 ;;
    --point) points+=("$2"); shift 2 ;;
    --set) fixed="${fixed:+$fixed }$2"; shift 2 ;;  # applied to every point, not part of its name
    --jobs) jobs="$2"; shift 2 ;;
    --metric) metric="$2"; shift 2 ;;
    --eval-data) eval_data="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --) shift; eval_extra=("$@"); break ;;
    -h|--help) usage 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$config" ] || die "--config BASE.yaml is required"
[ -f "$config" ] || die "config not found: $config"
[ -n "$out" ] || die "--out DIR is required"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '$jobs'"
[ ${#grids[@]} -gt 0 ] || [ ${#points[@]} -gt 0 ] || die "give at least one --grid KEY=V1,V2 or --point \"KEY=V ...\""
for tool in peft-train peft-eval; do [ -x "$bin/$tool" ] || die "$bin/$tool not found (build first, or --bin DIR)"; done
command -v jq >/dev/null || die "jq is required (Debian package jq)"

# The points: the grid's cartesian product, then the listed points. Each is a space-separated list of overrides.
all_points=()
if [ ${#grids[@]} -gt 0 ]; then
  all_points=("")
  for grid in "${grids[@]}"; do
    [[ "$grid" == *=* ]] || die "--grid '$grid' is not KEY=V1,V2,..."
    key="${grid%%=*}" values="${grid#*=}"
    IFS=',' read -r -a list <<< "$values"
    [ ${#list[@]} -gt 0 ] || die "--grid '$grid' has no values"
    next=()
    for partial in "${all_points[@]}"; do
      for value in "${list[@]}"; do next+=("${partial:+$partial }$key=$value"); done
    done
    all_points=("${next[@]}")
  done
fi
for point in "${points[@]}"; do all_points+=("$point"); done

# A directory name per point: its overrides, made safe for file names.
point_name() { echo "$1" | sed 's/ /__/g; s/=/-/g; s#[^A-Za-z0-9._-]#_#g'; }

# A key of a section of the resolved run_config.yaml that peft-train writes (block style, two-space indent).
yaml_get() {
  awk -v section="$2:" -v key="  $3:" '
    $0 == section { inside = 1; next }
    /^[^ ]/ { inside = 0 }
    inside && index($0, key) == 1 { value = substr($0, length(key) + 2); gsub(/^["'\'']|["'\'']$/, "", value); print value; exit }
  ' "$1"
}

mkdir -p "$out"
echo "sweep: ${#all_points[@]} point(s) over $config -> $out (jobs: $jobs)"
for point in "${all_points[@]}"; do
  name="$(point_name "$point")"
  [ -f "$out/$name/DONE" ] && continue
  # shellcheck disable=SC2086
  if ! check="$("$bin/peft-train" --config "$config" $fixed $point output.dir="$out/$name/run" output.overwrite=true --dry-run 2>&1)"; then
    die "point '$point': $(echo "$check" | tail -n 1)"
  fi
done

# A metric the task does not report stops the sweep before anything trains (when the task can be told here: from
# peft-eval's --task, a data.task override, or the config's block-style data section; else after the first point).
if [ -n "$metric" ]; then
  task=""
  for ((i = 0; i + 1 < ${#eval_extra[@]}; ++i)); do [ "${eval_extra[$i]}" = "--task" ] && task="${eval_extra[$((i + 1))]}"; done
  [[ -z "$task" && " $fixed " =~ \ data\.task=([a-z_]+)\  ]] && task="${BASH_REMATCH[1]}"
  [ -n "$task" ] || task="$(yaml_get "$config" data task)"
  [ -n "$task" ] || grep -q 'task' "$config" || task="language_modeling"
  case "$task" in
    classification) known="accuracy f1 macro_f1 matthews majority_accuracy examples" ;;
    generation) known="bleu rouge_l exact_match brevity_penalty hypothesis_length reference_length examples" ;;
    language_modeling) known="loss perplexity tokens examples" ;;
    *) known="" ;;
  esac
  [ -z "$known" ] || [[ " $known " == *" $metric "* ]] ||
    die "--metric $metric does not fit the task $task (its metrics: ${known// /, })"
fi

run_point() {  # one point, in its own directory; DONE is written last
  local point="$1" dir="$2"
  mkdir -p "$dir"
  local start=$SECONDS
  # shellcheck disable=SC2086
  "$bin/peft-train" --config "$config" $fixed $point output.dir="$dir/run" output.overwrite=true > "$dir/train.log" 2>&1 ||
    { echo "sweep: point '$point' failed in peft-train (see $dir/train.log): $(tail -n 1 "$dir/train.log")" >&2; return 1; }
  local resolved="$dir/run/run_config.yaml"
  local model data task max_length tokenizer arguments=()
  model="$(yaml_get "$resolved" model path)"
  data="${eval_data:-$(yaml_get "$resolved" data eval)}"
  task="$(yaml_get "$resolved" data task)"
  max_length="$(yaml_get "$resolved" data max_length)"
  tokenizer="$(yaml_get "$resolved" model tokenizer)"
  [ -n "$data" ] || { echo "sweep: point '$point': no held-out data (data.eval or --eval-data)" >&2; return 1; }
  if [ -f "$dir/run/adapter_config.json" ]; then
    arguments=(--model "$model" --adapter "$dir/run")
  elif [ -f "$dir/run/model.pt" ]; then
    arguments=(--model "$dir/run/model.pt")
  else
    arguments=(--model "$dir/run")  # full fine-tuning wrote a whole model directory
  fi
  [ -n "$tokenizer" ] && arguments+=(--tokenizer "$tokenizer")
  "$bin/peft-eval" "${arguments[@]}" --data "$data" --task "${task:-language_modeling}" --max-length "$max_length" \
    --json "$dir/eval.json" "${eval_extra[@]}" > "$dir/eval.log" 2>&1 ||
    { echo "sweep: point '$point' failed in peft-eval (see $dir/eval.log): $(tail -n 1 "$dir/eval.log")" >&2; return 1; }
  local train_loss
  train_loss="$(jq -s '[.[] | select(.loss != null)] | last | .loss // null' "$dir/run/train_log.jsonl")"
  jq --arg point "$point" --argjson seconds $((SECONDS - start)) --argjson train_loss "$train_loss" \
    '{point: $point, seconds: $seconds, final_train_loss: $train_loss, metrics: .metrics}' "$dir/eval.json" \
    > "$dir/result.json.tmp"
  mv "$dir/result.json.tmp" "$dir/result.json"
  : > "$dir/DONE.tmp" && mv "$dir/DONE.tmp" "$dir/DONE"
  echo "sweep: finished '$point' in $((SECONDS - start)) s"
}

# Each point runs as its own process group, so that Ctrl-C stops it and everything it started.
set -m
running=()
interrupted=0
stop_all() {
  interrupted=1
  trap '' INT TERM
  for pid in "${running[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  local finished
  finished="$(find "$out" -mindepth 2 -maxdepth 2 -name DONE | wc -l)"
  echo "sweep: interrupted; $finished of ${#all_points[@]} point(s) finished and kept. Re-run the same command to continue." >&2
  exit 130
}
trap stop_all INT TERM

failed=0
for point in "${all_points[@]}"; do
  name="$(point_name "$point")"
  if [ -f "$out/$name/DONE" ]; then echo "sweep: '$point' already finished, skipped"; continue; fi
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
  run_point "$point" "$out/$name" &
  running+=("$!")
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
[ "$interrupted" -eq 0 ] || exit 130

# The table: every finished point, sorted by the metric (loss and perplexity ascending, the others descending).
results=("$out"/*/result.json)
[ -e "${results[0]}" ] || die "no point finished"
if [ -z "$metric" ]; then
  metric="$(jq -r '.metrics | if has("loss") then "loss" elif has("accuracy") then "accuracy" else "bleu" end' "${results[0]}")"
fi
order="desc"
case "$metric" in loss|perplexity) order="asc" ;; esac
jq -e --arg m "$metric" '.metrics | has($m)' "${results[0]}" >/dev/null ||
  die "--metric $metric is not among this task's metrics: $(jq -r '.metrics | keys | join(", ")' "${results[0]}")"
table="$(jq -s --arg m "$metric" --arg order "$order" '
  sort_by(.metrics[$m]) | (if $order == "desc" then reverse else . end)' "${results[@]}")"
columns="$(jq -r '[.[0].metrics | keys[] | select(. != "bleu_precisions")] | join(" ")' <<< "$table")"
{
  echo "point,$(tr ' ' ',' <<< "$columns"),final_train_loss,seconds"
  jq -r --arg columns "$columns" '.[] | [.point] + [.metrics[($columns | split(" "))[]]] + [.final_train_loss, .seconds]
    | @csv' <<< "$table"
} > "$out/results.csv.tmp" && mv "$out/results.csv.tmp" "$out/results.csv"
{
  echo "| point | $(sed 's/ / | /g' <<< "$columns") | final train loss | seconds |"
  echo "|---|$(sed 's/[^ ]*/---/g; s/ /|/g' <<< "$columns")|---|---|"
  jq -r --arg columns "$columns" '.[] | "| `\(.point)` | " + ([.metrics[($columns | split(" "))[]]
    | if type == "number" and . != floor then (. * 10000 | round / 10000 | tostring) else tostring end]
    | join(" | ")) + " | \(.final_train_loss * 10000 | round / 10000) | \(.seconds) |"' <<< "$table"
} > "$out/results.md.tmp" && mv "$out/results.md.tmp" "$out/results.md"
cat "$out/results.md"
best="$(jq -r --arg m "$metric" '.[0] | "\(.point) (\($m) \(.metrics[$m]))"' <<< "$table")"
echo "sweep: best point by $metric: $best; table in $out/results.csv and $out/results.md"
[ "$failed" -eq 0 ] || { echo "sweep: some points failed; re-run to retry them" >&2; exit 1; }

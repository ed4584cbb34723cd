#!/usr/bin/env bash
# The chat demo (README, "Conversations and chat templates"): LoRA on the embedded stories260K trained on the
# Self-Instruct seed tasks as conversations (configs/chat.yaml), then the 25 held-out tasks answered greedily with
# --chat, before and after, scored by ROUGE-L against the human-written answers.
# Needs build/ (scripts/build.sh). Writes runs/chat/. A few minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEFT_BUILD_DIR:-build}
held_out=third_party/self_instruct_chat/eval_generation.jsonl
answer() {
  "$bin/peft-eval" --model third_party/stories260K-hf "$@" --task generation --chat --chat-template simple \
    --data "$held_out" --max-new-tokens 64 --batch-size 25 2>/dev/null | grep ROUGE-L
}
"$bin/peft-train" --config configs/chat.yaml
echo "held-out tasks answered with --chat, before and after:"
echo "  base:    $(answer)"
echo "  adapter: $(answer --adapter runs/chat)"

#!/usr/bin/env bash
# Starts N data-parallel processes of a command on this machine, with the variables torchrun would give them
# (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and waits for all of them. If one
# fails, the others are stopped and its status is returned. Rank 0's output goes to the terminal, the others' to
# OUT_DIR/rank-N.log when OUT_DIR is set (else they are discarded).
# Usage: scripts/ddp_local.sh N build/peft-train --config configs/quickstart.yaml [key=value ...]
# Environment: MASTER_PORT (default 29500), OUT_DIR.
set -euo pipefail
if [ $# -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N COMMAND [ARGS...]   (N processes, N >= 1)" >&2
  exit 2
fi
count=$1
shift
export WORLD_SIZE=$count LOCAL_WORLD_SIZE=$count MASTER_ADDR=127.0.0.1 MASTER_PORT=${MASTER_PORT:-29500}
pids=()
for ((rank = count - 1; rank >= 0; rank--)); do
  log=/dev/null
  [ -n "${OUT_DIR:-}" ] && log="$OUT_DIR/rank-$rank.log"
  if [ "$rank" -eq 0 ]; then
    RANK=0 LOCAL_RANK=0 "$@" &
  else
    RANK=$rank LOCAL_RANK=$rank "$@" > "$log" 2>&1 &
  fi
  pids+=($!)
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' INT TERM
status=0
# The first process to fail stops the rest (they would otherwise wait for it until the store times out).
for ((left = ${#pids[@]}; left > 0; left--)); do
  wait -n || status=$?
  if [ "$status" -ne 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
    break
  fi
done
exit $status

#!/usr/bin/env bash
# The GPU check: run once on a lent GPU machine (no network needed), about 4 minutes, never more than 6.
#
#   bench/gpu_check.sh [--dry-run]
#
# Prints the machine (nvidia-smi, torch/CUDA versions), then each stage of bench/gpu_check.py in its own process
# under its own time limit: GPT decoding tokens/s (dynamic vs static step, eager vs CUDA graphs, fp32 vs
# bf16/fp16), end-to-end RTF and time to first audio, peak VRAM, and 20 LoRA training steps of each stage. A
# stage that fails or runs out of time is reported and the next one runs. Everything printed is also written to
# $OUT/gpu_check.log when $OUT is set (else in $TMPDIR or /tmp). --dry-run: the same stages on the CPU with
# tiny models (a smoke test of the script, not figures). Python: $GPU_CHECK_PYTHON, else .venv/bin/python, else
# python3. The budget: $GPU_CHECK_BUDGET_S seconds (345 by default).
set -u
cd "$(dirname "$0")/.." || exit 1

DRY="" TOKENS=300 E2E_TOKENS=100 STEPS=20
if [ "${1:-}" = "--dry-run" ]; then DRY="--dry-run" TOKENS=24 E2E_TOKENS=20 STEPS=3; fi
BUDGET_S=${GPU_CHECK_BUDGET_S:-345}  # the whole script; each stage gets at most what is left
LOG="${OUT:-${TMPDIR:-/tmp}}/gpu_check.log"
mkdir -p "$(dirname "$LOG")" && : >"$LOG"
exec > >(tee -a "$LOG") 2>&1

if [ -n "${GPU_CHECK_PYTHON:-}" ]; then PY=$GPU_CHECK_PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=$(command -v python3 || command -v python); fi
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
header() { printf '\n===== %s  [t=%ss] =====\n' "$*" "$(elapsed)"; }

# stage NAME LIMIT_S ARGS…: one python process, killed at min(LIMIT_S, what is left of the budget)
stage() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET_S - $(elapsed) - 5 ))
  if [ "$left" -lt 15 ]; then header "$name: SKIPPED (the ${BUDGET_S} s budget is spent)"; return 0; fi
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  header "$name (limit ${limit} s)"
  local t0; t0=$(date +%s)
  timeout -k 5 "$limit" "$PY" -u bench/gpu_check.py --stage "$name" $DRY "$@"
  local rc=$?
  case $rc in
    0) echo "[$name] OK in $(( $(date +%s) - t0 )) s" ;;
    3) echo "[$name] no CUDA in this torch" ;;
    124|137) echo "[$name] TIMED OUT after ${limit} s (figures above are partial)" ;;
    *) echo "[$name] FAILED with exit status $rc after $(( $(date +%s) - t0 )) s" ;;
  esac
  return $rc
}

header "machine"
date -u
uname -srm
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,power.limit --format=csv
  nvidia-smi | head -n 15
else
  echo "nvidia-smi: not found"
fi
echo "python: $PY ($("$PY" --version 2>&1))"
echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git status --porcelain 2>/dev/null | wc -l) changed file(s)"

stage env 60
if [ $? -eq 3 ]; then
  header "done: no CUDA-capable torch here, GPU stages skipped (total $(elapsed) s)"
  exit 0
fi
stage gpt 110 --tokens "$TOKENS"
stage e2e 100 --tokens "$E2E_TOKENS"
stage train-gpt 60 --steps "$STEPS"
stage train-sovits 80 --steps "$STEPS"

header "after"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.used,temperature.gpu,utilization.gpu --format=csv
fi
header "done (total $(elapsed) s; log: $LOG)"
exit 0

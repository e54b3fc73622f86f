#!/usr/bin/env bash
# The course's GPU checks and benchmarks, in one run (README, "Running on a GPU"):
#   1. the tests marked `cuda` (the Triton kernel in every dtype, and the library on CUDA);
#   2. `course bench` on CUDA in bfloat16 and in float32, the Triton kernel included,
#      written to book/_static/efficient/bench-<device>-<dtype>.json, which chapter
#      "Beyond the quadratic wall" plots.
#
#   scripts/gpu_run.sh [OUT_DIR]
#
# Every step runs even if an earlier one fails; each step's log and every JSON file are
# also copied into OUT_DIR (default: gpu-run/), so nothing is lost. The exit status is
# that of the first failing step. Python: $PYTHON, else .venv/bin/python, else python3.
# The environment needs torch with CUDA, triton, numpy, tqdm, pytest, hypothesis (plotly
# and the book's packages are not needed). About 3-5 minutes on an H200.
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${1:-gpu-run}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

step() {  # step NAME COMMAND...: run, log to OUT_DIR/NAME.log, remember the first failure
    local name=$1; shift
    echo "=== $name: $*"
    local start=$SECONDS
    "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc, $((SECONDS - start)) s"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

step environment "$PY" -c '
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print(torch.cuda.get_device_name())
import triton
print("triton", triton.__version__)
'
if [ "$status" -ne 0 ]; then
    echo "No CUDA torch or no triton: nothing else can run." >&2
    exit "$status"
fi

mkdir -p book/_static/efficient
NAME=$("$PY" -c 'import re, torch; print(re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name().lower()).strip("-"))')

# The files with `cuda` tests; -p no:cacheprovider: no .pytest_cache in the tree.
step cuda-tests "$PY" -m pytest -m cuda -q -p no:cacheprovider -o addopts="" -rs \
    tests/test_triton_attention.py tests/test_efficient.py tests/test_attention.py \
    tests/test_multihead.py tests/test_softmax.py tests/test_device.py

# Longer sequences than the CPU default: on a GPU a call at n = 1024 takes microseconds.
for dtype in bfloat16 float32; do
    short=$([ "$dtype" = bfloat16 ] && echo bf16 || echo fp32)
    json="book/_static/efficient/bench-$NAME-$short.json"
    step "bench-$short" "$PY" -m course_lib.bench --device cuda --dtype "$dtype" \
        --ns 1024 2048 4096 8192 16384 --json "$json"
    [ -f "$json" ] && cp "$json" "$OUT_DIR/"
done

echo "=== done: exit $status; logs and JSON in $OUT_DIR"
ls -l "$OUT_DIR"
exit "$status"

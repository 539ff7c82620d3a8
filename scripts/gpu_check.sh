#!/usr/bin/env bash
# scripts/gpu_check.sh (make gpu-check): issue 19's proof on one CUDA GPU, in one command under 8 minutes, with
# no network. Runs from the working tree with the machine's own python3 (no venv, no install of the project):
#   1. the wheels the machine lacks (make gpu-wheels put them in .gpu/wheels) -> --target /tmp/dehrnet_site
#   2. the gpu-marked tests (tests/test_gpu_*.py)                    -> $OUT/pytest.log, $OUT/pytest.xml
#   3. dehrnet bench --gpu: the network alone at batch 1/8/32/64 fp32 and fp16 (CUDA events), crops and
#      decoding on the GPU, the 1080p pipeline with 1 and 5 people, flip on -> $OUT/bench.json, $OUT/bench.md
#   4. the compiled network (torch.compile, CUDA graphs) at fp16 batch 64, with the time left
#                                                                    -> $OUT/bench_compile.json
#   5. a one-screen summary with every target met or not              -> stdout and $OUT/summary.txt
# Without CUDA it says so and exits 0 at once (CI runs it that way). Exit 1 when a test or the bench failed.
# Environment: OUT (default gpu_check_out), PYTHON (default python3), GPU_CHECK_BUDGET_S (default 450: the
# compiled run is skipped when less than 90 s of it is left). The device call carries .gpu (docs/gpu.md).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
BUDGET=${GPU_CHECK_BUDGET_S:-450}
start=$SECONDS

if ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
  echo "gpu_check: no CUDA device here (no nvidia-smi, no /dev/nvidia0): nothing to check"
  exit 0
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: $PY's torch sees no CUDA device (or torch is missing): nothing to check"
  exit 0
fi

mkdir -p "$OUT"
site=/tmp/dehrnet_site
if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/wheels/*.whl \
    || echo "gpu_check: installing .gpu/wheels failed; going on with what the machine has"
else
  echo "gpu_check: no .gpu/wheels (run make gpu-wheels here, carry .gpu): tests needing ultralytics, av or pycocotools fail"
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export DEHRNET_OFFLINE=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false YOLO_CONFIG_DIR=/tmp/dehrnet_yolo
export DEHRNET_HOME=/tmp/dehrnet_home  # the guard's verdicts stay out of the tree
mkdir -p "$DEHRNET_HOME/weights/guard" "$YOLO_CONFIG_DIR"
cp .gpu/guard/*.pt "$DEHRNET_HOME/weights/guard/" 2>/dev/null || cp weights/guard/*.pt "$DEHRNET_HOME/weights/guard/" 2>/dev/null \
  || echo "gpu_check: no trained guard model (.gpu/guard): the fp16 keypoint test skips"
if [ -d .gpu/data ]; then export DEHRNET_TEST_DATA="$PWD/.gpu/data"; fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | head -1
  "$PY" -c "import sys, torch, cv2, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
  "$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" 2>&1 | tail -1
  "$PY" -c "import ultralytics, av, pycocotools, lap; print('ultralytics', ultralytics.__version__, 'av', av.__version__)" 2>&1 | tail -1
} > "$OUT/env.txt"
cat "$OUT/env.txt"

status=0
echo "gpu_check: gpu-marked tests"
timeout 200 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rs --junitxml="$OUT/pytest.xml" tests/test_gpu_*.py \
  > "$OUT/pytest.log" 2>&1 || status=1
tail -3 "$OUT/pytest.log"

echo "gpu_check: dehrnet bench --gpu ($((SECONDS - start)) s so far)"
timeout 200 "$PY" -m dehrnet_cli bench --gpu --json "$OUT/bench.json" --markdown "$OUT/bench.md" \
  > "$OUT/bench.log" 2>&1 || status=1
tail -2 "$OUT/bench.log"

left=$((BUDGET - (SECONDS - start)))
if [ "$left" -ge 90 ]; then
  echo "gpu_check: compiled network, fp16 batch 64 (${left} s left)"
  timeout "$left" "$PY" -m dehrnet_cli bench --gpu --compile --precision fp16 --batch 64 --no-pipeline --size 640x360 \
    --people 1 --frames 32 --json "$OUT/bench_compile.json" >> "$OUT/bench.log" 2>&1 \
    || echo "gpu_check: the compiled run did not finish (see bench.log)"
else
  echo "gpu_check: compiled run skipped (${left} s left of ${BUDGET})"
fi

echo "gpu_check: done in $((SECONDS - start)) s; files in $OUT"
"$PY" -m dehrnet_cli.bench.gpu_summary "$OUT" || status=1
exit $status

#!/usr/bin/env bash
# One-shot check on a CUDA machine: CUDA tests of colourmodels, SSIM speed, train-step speed
# (reference vs fast), inference speed, loss curves of both modes on real photos, and
# torch.compile as an extra variant, an ensemble's six generators stepped together against one
# after another (bench/bench_stacked.py). Writes what it measures under ${OUT:-bench/out}.
# Needs bench/data/photos.npy (uint8 (N, H, W, 3) real photos) for the curves.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT="${OUT:-bench/out}"; mkdir -p "$OUT"
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
if [ "${WITH_TESTS:-0}" = 1 ]; then
  echo "== CUDA tests (colour, metrics)"
  timeout 120 $PY -m pytest -p no:django -p no:cacheprovider -q -o addopts="" \
    --confcutdir=tests/colourmodels tests/colourmodels/test_colour.py tests/colourmodels/test_metrics.py 2>&1 | tail -4
  echo "== CUDA test of the device data path (rgb8 batches converted on the GPU)"
  timeout 120 $PY -m pytest -p no:django -p no:cacheprovider -q -o addopts="" \
    --confcutdir=tests/colourmodels tests/colourmodels/test_data_path.py -k cuda 2>&1 | tail -4
  echo "== SSIM speed"
  timeout 60 $PY bench/bench_ssim.py 2>&1 | tail -8
fi
echo "== train step: reference, fast without and with torch.compile; inference; loss curves"
timeout "${BENCH_TIMEOUT:-400}" $PY bench/bench_train.py \
  --modes reference fast-no-compile fast --curves bench/data/photos.npy --out "$OUT" 2>&1
echo "== CUDA tests of the stacked trainer (streams; one CUDA graph for all models)"
timeout 300 $PY -m pytest -p no:django -p no:cacheprovider -q -o addopts="" \
  --confcutdir=tests/colourmodels tests/colourmodels/test_stacked.py -k cuda 2>&1 | tail -4
echo "== six generators stepped together vs one after another vs one (batch 16, 256 px)"
timeout "${STACK_TIMEOUT:-300}" $PY bench/bench_stacked.py --models 6 --batch 16 \
  --mode fast-no-compile --out "$OUT" 2>&1
echo "== done"

#!/usr/bin/env bash
# Correctness on a CUDA machine, end to end: the CUDA tests of the step, trainer and data
# path, then the command line trains with every speed-up on (bf16, channels_last, fused Adam,
# torch.compile, one CUDA graph per step, colour conversion on the GPU), resumes, colourises
# and evaluates. Prints what it checks; exits non-zero on the first failure.
set -euo pipefail
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
echo "== CUDA tests"
timeout 240 $PY -m pytest -p no:django -p no:cacheprovider -q -o addopts="" -x \
  --confcutdir=tests/colourmodels \
  tests/colourmodels/test_data_path.py tests/colourmodels/test_pix2pix_step.py \
  tests/colourmodels/test_colour.py tests/colourmodels/test_metrics.py 2>&1 | tail -3
echo "== command line, fast mode on CUDA"
$PY -c "from colourmodels.data.synthetic import write_synthetic; write_synthetic('$WORK/photos', 40, 64, seed=1)"
$PY -m colourmodels train "$WORK/photos" --size 64 --width 32 --epochs 3 --batch 16 \
  --no-early-stopping --fast --device cuda --quiet --out "$WORK/run"
$PY -m colourmodels train "$WORK/photos" --size 64 --width 32 --epochs 4 --batch 16 \
  --no-early-stopping --fast --device cuda --quiet --out "$WORK/run"
$PY - "$WORK/run" <<'PY'
import json, sys
history = json.load(open(f"{sys.argv[1]}/history.json"))
rows = history["history"] if isinstance(history, dict) else history
epochs = [r["epoch"] for r in rows]
print("epochs", epochs, "val_l1", [round(r["val_l1"], 3) for r in rows])
assert epochs == [1, 2, 3, 4], epochs
assert all(r["val_l1"] == r["val_l1"] for r in rows), "NaN in validation loss"
PY
mkdir -p "$WORK/truth" && cp "$WORK"/photos/*/*.png "$WORK/truth/"
$PY -m colourmodels colourise "$WORK/run" "$WORK/truth" --out "$WORK/out" --device cuda
$PY -m colourmodels evaluate "$WORK/out" "$WORK/truth" --json > "$WORK/metrics.json"
$PY -c "import json; print(json.load(open('$WORK/metrics.json'))['mean'])"
echo "== smoke test passed"

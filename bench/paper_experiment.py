"""The paper's experiment on real photographs: a baseline and a context ensemble trained on
the same folder until early stopping ends them, then both scored on the test split beside
the "no colour" and category-mean-chroma references (the paper's Table 4), with a grid of
outputs.

    python bench/paper_experiment.py --cifar cifar10-jpeg-subset.tar.gz --out OUT
    python bench/paper_experiment.py --folder PHOTOS --size 64 --out OUT --budget 600

The folder holds one subfolder per category (with ``--cifar``, it is made from the chosen
CIFAR-10 classes, train and test images together, since the commands split it themselves).
Both networks are trained by the command line (``python -m colourmodels train`` and
``ensemble train --together``), in parallel, in rounds of ``--round`` epochs resumed from
their checkpoints (the commands resume exactly) until early stopping has ended every
network, ``--epochs`` is reached or ``--budget`` seconds have passed: a run cut short by the
budget is reported as such, never passed off as stopped early. Writes ``OUT/summary.json``
(the metrics, each network's stopping epoch, the time taken) and ``OUT/grid.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("airplane", "automobile", "bird", "cat", "horse", "ship")
GRID_PER_CATEGORY = 3


def cifar_folder(tar_path: Path, work: Path, classes, per_class: int | None) -> Path:
    """One subfolder per class, the subset's train and test images together."""
    unpacked = work / "cifar"
    if not unpacked.exists():
        with tarfile.open(tar_path) as tar:
            tar.extractall(unpacked, filter="data")
    roots = [p for p in unpacked.rglob("train") if p.is_dir()]
    if not roots:
        raise SystemExit(f"{tar_path}: no train/ folder inside")
    base = roots[0].parent
    photos = work / "photos"
    if photos.exists():
        shutil.rmtree(photos)
    for name in classes:
        (photos / name).mkdir(parents=True)
        files = sorted((base / "train" / name).glob("*.jpg"))
        files += sorted((base / "test" / name).glob("*.jpg"))
        for f in files[:per_class] if per_class else files:
            shutil.copy(f, photos / name / f"{f.parent.parent.name}-{f.name}")
    return photos


def train_in_rounds(args, photos: Path, out: Path) -> dict:
    """Both runs in parallel, in rounds, until they are done or the budget is spent."""
    py = [sys.executable, "-m", "colourmodels"]
    common = ["--size", str(args.size), "--width", str(args.width), "--seed", str(args.seed)]
    common += ["--device", args.device, "--quiet"] + (["--fast"] if args.fast else [])
    if args.workers is not None:
        common += ["--workers", str(args.workers)]
    start = time.monotonic()
    epochs = _trained_epochs(out)  # a run of an earlier call resumes
    rounds = []
    done = {"baseline": False, "ensemble": False}
    per_epoch = 0.0  # of the last round
    while not all(done.values()) and epochs < args.epochs:
        elapsed = time.monotonic() - start
        if elapsed + per_epoch * args.round > args.budget:  # the next round would not fit
            break
        step = args.round if per_epoch else max(1, args.round // 4)  # a short first round
        round_start, epochs = time.monotonic(), min(args.epochs, epochs + step)
        procs = {}
        if not done["baseline"]:
            procs["baseline"] = subprocess.Popen(
                py
                + ["train", str(photos), "--out", str(out / "baseline"), "--epochs", str(epochs)]
                + common,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        if not done["ensemble"]:
            procs["ensemble"] = subprocess.Popen(
                py
                + [
                    "ensemble",
                    "train",
                    str(photos),
                    "--out",
                    str(out / "ensemble"),
                    "--epochs",
                    str(epochs),
                    "--together",
                    "--classifier-epochs",
                    str(args.classifier_epochs),
                    "--classifier-patience",
                    str(args.classifier_patience),
                    "--classifier-batch",
                    str(args.classifier_batch),
                ]
                + common,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        for name, proc in procs.items():
            text, _ = proc.communicate()
            if proc.returncode:
                print(text[-3000:])
                raise SystemExit(f"{name} training failed (exit {proc.returncode})")
            done[name] = _finished(name, out, epochs)
        per_epoch = (time.monotonic() - round_start) / step
        rounds.append(
            {"epochs": epochs, "seconds": round(time.monotonic() - start, 1), "done": dict(done)}
        )
        print(f"round to epoch {epochs}: {time.monotonic() - start:.0f} s, done {done}", flush=True)
    return {
        "rounds": rounds,
        "seconds": round(time.monotonic() - start, 1),
        "all_stopped_early": all(done.values()),
        "epoch_cap": epochs,
    }


def _trained_epochs(out: Path) -> int:
    """The epochs both runs have finished already (0 for new runs)."""
    try:
        base = json.loads((out / "baseline" / "summary.json").read_text())["last_epoch"]
        state = json.loads((out / "ensemble" / "ensemble.json").read_text())
        members = [m["last_epoch"] for m in state["members"].values() if m["kind"] == "generator"]
        return min([base, *members]) if members else 0
    except (OSError, KeyError, ValueError):
        return 0


def _finished(name: str, out: Path, epochs: int) -> bool:
    """Whether every network of the run has stopped early (ran out of epochs is not done)."""
    if name == "baseline":
        summary = json.loads((out / "baseline" / "summary.json").read_text())
        return summary.get("stopped_epoch") is not None
    state = json.loads((out / "ensemble" / "ensemble.json").read_text())
    generators = [m for k, m in state["members"].items() if m["kind"] == "generator"]
    return all(m["stopped_epoch"] is not None for m in generators)


def evaluate(args, out: Path) -> dict:
    import torch

    from colourmodels.checkpoints import load_classifier, load_generator
    from colourmodels.data import ColourisationDataset, load_rgb
    from colourmodels.data.folders import ImageRecord
    from colourmodels.evaluation import TestEvaluation, train_chroma_means

    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    state = json.loads((out / "ensemble" / "ensemble.json").read_text())
    categories, space = state["categories"], state["space"]
    split = json.loads((out / "ensemble" / "split.json").read_text())
    base_split = json.loads((out / "baseline" / "split.json").read_text())
    same_split = [r["path"] for r in split["test"]] == [r["path"] for r in base_split["test"]]
    folder = Path(split["folder"])
    records = [ImageRecord(folder / r["path"], r["category"]) for r in split["test"]]
    by_category: dict[str, list[Path]] = {}
    for r in split["train"]:
        by_category.setdefault(r["category"], []).append(folder / r["path"])
    means = train_chroma_means(
        by_category, categories, space=space, image_size=args.size, load=lambda p: load_rgb(p)
    )
    members = state["members"]
    classifier = load_classifier(out / "ensemble" / members["classifier"]["best"], device)[0]
    generators = {
        c: load_generator(out / "ensemble" / members[f"generator-{c}"]["best"], device)[0]
        for c in categories
    }
    baseline = load_generator(_baseline_best(out / "baseline"), device)[0]
    for m in (classifier, baseline, *generators.values()):
        m.eval()
    ens = TestEvaluation(
        space=space,
        categories=categories,
        generators=generators,
        classifier=classifier,
        routings=("predicted", "oracle", "soft"),
        means=means,
    )
    base = TestEvaluation(
        space=space, categories=categories, generators={"": baseline}, means=means
    )
    data = ColourisationDataset(records, space, args.size, categories, train=False)
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=False)
    from colourmodels.colour import luma_chroma_to_rgb

    grid_rows, shown, offset = [], {}, 0  # up to GRID_PER_CATEGORY images of each category
    with torch.inference_mode():
        for luma, chroma, cat in loader:
            names = [records[offset + i].category for i in range(len(luma))]
            offset += len(luma)
            luma, chroma = luma.to(device), chroma.to(device)
            e = ens.add(luma, chroma, cat, names)
            b = base.add(luma, chroma, cat, names)
            truth = luma_chroma_to_rgb(luma, chroma, space)
            grey = luma_chroma_to_rgb(luma, torch.zeros_like(chroma), space)
            for i, name in enumerate(names):
                if shown.get(name, 0) < GRID_PER_CATEGORY:
                    shown[name] = shown.get(name, 0) + 1
                    grid_rows.append([x[i] for x in (grey, b[""].rgb, e["predicted"].rgb, truth)])
    summary = {
        "images": len(records),
        "same_test_split": same_split,
        "baseline": base.tables(),
        "ensemble": {r: ens.tables(r) for r in ("predicted", "oracle", "soft")},
    }
    if grid_rows:
        _grid(grid_rows, out / "grid.png")
    return summary


def _baseline_best(run: Path) -> Path:
    for name in ("best_generator.pt", "generator_best.pt"):
        if (run / name).is_file():
            return run / name
    found = sorted(run.glob("*best*.pt"))
    if not found:
        raise SystemExit(f"{run}: no best generator file")
    return found[0]


def _grid(rows, path: Path) -> None:
    """One row per image: grayscale input, baseline, ensemble (predicted routing), truth."""
    import numpy as np
    from PIL import Image

    lines = [
        np.concatenate([x.clamp(0, 1).permute(1, 2, 0).float().cpu().numpy() for x in row], axis=1)
        for row in rows
    ]
    image = (np.concatenate(lines, axis=0) * 255).round().astype("uint8")
    big = (image.shape[1] * 3, image.shape[0] * 3)
    Image.fromarray(image).resize(big, Image.NEAREST).save(path)


def _table(summary: dict) -> str:
    lines = [f"{'':24}{'L1':>8}{'SSIM':>8}{'PSNR':>8}{'colourf.':>10}"]

    def row(label, m):
        return f"{label:24}{m['l1']:8.3f}{m['ssim']:8.3f}{m['psnr']:8.2f}{m['colourfulness']:10.2f}"

    lines.append(row("baseline", summary["baseline"]["test"]))
    for r in ("predicted", "oracle", "soft"):
        lines.append(row(f"ensemble, {r}", summary["ensemble"][r]["test"]))
    refs = summary["baseline"]["references"]
    for key in ("no_colour", "category_mean_chroma"):
        if refs.get(key):
            lines.append(row(key.replace("_", " "), refs[key]["test"]))
    truth = summary["baseline"]["test"].get("colourfulness_truth")
    if truth is not None:
        lines.append(f"{'ground truth colourfulness':24}{'':32}{truth:10.2f}")
    clf = summary["ensemble"]["predicted"]["classifier"]
    lines.append(f"classifier: accuracy {clf['accuracy']:.3f}, macro-F1 {clf['macro_f1']:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cifar", type=Path, help="the CIFAR-10 JPEG subset (.tar.gz)")
    source.add_argument("--folder", type=Path, help="one subfolder of photos per category")
    parser.add_argument("--classes", nargs="+", default=list(CLASSES))
    parser.add_argument("--per-class", type=int, default=None, help="at most this many images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=200, help="the generators' maximum")
    parser.add_argument("--round", type=int, default=20, help="epochs per round")
    parser.add_argument("--classifier-epochs", type=int, default=30)
    parser.add_argument("--classifier-patience", type=int, default=5)
    parser.add_argument("--classifier-batch", type=int, default=16)
    parser.add_argument(
        "--budget", type=float, default=600, help="no round that would end after this (s)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    photos = args.folder or cifar_folder(args.cifar, args.out, args.classes, args.per_class)
    training = train_in_rounds(args, photos, args.out)
    summary = {"training": training, **evaluate(args, args.out)}
    for name, run in (("baseline", "baseline"),):
        summary[f"{name}_history"] = _stopping(args.out / run / "summary.json")
    state = json.loads((args.out / "ensemble" / "ensemble.json").read_text())
    summary["ensemble_members"] = {
        k: {f: m.get(f) for f in ("best_epoch", "stopped_epoch", "last_epoch")}
        for k, m in state["members"].items()
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(_table(summary))
    print(
        "stopping:",
        json.dumps({"baseline": summary["baseline_history"], **summary["ensemble_members"]}),
    )
    print(
        f"trained in {training['seconds']} s; every network stopped early: "
        f"{training['all_stopped_early']}; test split shared: {summary['same_test_split']}"
    )


def _stopping(path: Path) -> dict:
    history = json.loads(path.read_text())
    return {f: history.get(f) for f in ("best_epoch", "stopped_epoch", "last_epoch")}


if __name__ == "__main__":
    main()

"""python -m colourmodels ensemble train|colourise|evaluate, and the routing they share with
the site (colourmodels.ensemble.route).

The runs are tiny (three categories of six 32 px images, width 8, two epochs) and run on
the CPU. The resume test kills a training process (SIGKILL, as a lost machine would) while
it writes a checkpoint, runs the command again and compares every file with an
uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from colourmodels.checkpoints import read_file
from colourmodels.cli import main
from colourmodels.data import load_rgb
from colourmodels.data.synthetic import write_synthetic
from colourmodels.ensemble import route

REPO = Path(__file__).resolve().parents[2]
CATEGORIES = ["city", "others", "people"]
TINY = ["--size", "32", "--width", "8", "--epochs", "2", "--batch", "4"]
TINY += ["--classifier-epochs", "2", "--classifier-batch", "4", "--device", "cpu"]
TINY += ["--workers", "0", "--quiet"]


def photos(root: Path, size: int = 32) -> Path:
    """Three categories of six synthetic scenes (4 train, 1 val, 1 test each), 32 px unless
    ``size`` says otherwise."""
    write_synthetic(root, per_category=6, size=size)
    for folder in root.iterdir():
        if folder.name not in CATEGORIES:
            shutil.rmtree(folder)
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- routing, by hand


class Constant(nn.Module):
    """A "generator" whose chroma is ``value`` everywhere."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, luma: torch.Tensor) -> torch.Tensor:
        n, _, h, w = luma.shape
        return torch.full((n, 2, h, w), self.value)


class FixedLogits(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, luma: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(luma)]


def test_routing_predicted_oracle_and_soft_by_hand():
    generators = [Constant(0.1), Constant(-0.2), Constant(0.5)]
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    classifier = FixedLogits(logits)
    luma = torch.zeros(3, 1, 4, 4)
    truth = [1, 2, 0]
    values = torch.tensor([0.1, -0.2, 0.5])

    predicted = route(luma, generators=generators, classifier=classifier, true_index=truth)
    assert predicted.chosen == [0, 2, 1] and predicted.predicted == [0, 2, 1]
    assert predicted.chroma[:, 0, 0, 0].tolist() == pytest.approx([0.1, 0.5, -0.2])
    assert predicted.oracle[:, 0, 0, 0].tolist() == pytest.approx([-0.2, 0.5, 0.1])

    oracle = route(
        luma, generators=generators, classifier=classifier, routing="oracle", true_index=truth
    )
    assert oracle.chosen == truth
    assert oracle.chroma[:, 1, 3, 3].tolist() == pytest.approx([-0.2, 0.5, 0.1])

    soft = route(luma, generators=generators, classifier=classifier, routing="soft")
    expected = (torch.softmax(logits, dim=1) * values).sum(dim=1)  # sum_c p_c * chroma_c
    assert torch.allclose(soft.chroma[:, 0, 0, 0], expected)
    assert torch.allclose(soft.chroma[:, 1, 2, 1], expected)
    assert soft.chosen == [0, 2, 1]

    with pytest.raises(ValueError, match="true category"):
        route(luma, generators=generators, classifier=classifier, routing="oracle")
    with pytest.raises(ValueError, match="routing must be one of"):
        route(luma, generators=generators, classifier=classifier, routing="nearest")
    baseline = route(luma, generators=[Constant(0.3)], classifier=None)
    assert baseline.chosen == [-1, -1, -1] and float(baseline.chroma.mean()) == pytest.approx(0.3)


# ---------------------------------------------------------------- the shared configuration


def test_run_configuration_gives_each_network_the_papers_settings():
    """The site's run configuration (ModelRun.config) and the command line's both become the
    trainers' configurations here: method.md §3–5."""
    from colourmodels.ensemble import classifier_config, default_config, pix2pix_config

    config = default_config(["city", "people", "forest"])
    for category, (k, mu) in {
        "city": (10, 1.1), "people": (10, 0.9), "forest": (20, 1.15), "": (10, 0.75),
    }.items():  # fmt: skip
        p2p = pix2pix_config(config, space="yuv", category=category)
        assert (p2p.early_stopping.k, p2p.early_stopping.mu) == (k, mu), category
        assert (p2p.image_size, p2p.width, p2p.epochs, p2p.batch_size) == (256, 64, 200, 16)
        assert (p2p.lr, p2p.beta1, p2p.lambda_l1, p2p.colour_space) == (2e-4, 0.5, 100.0, "yuv")
        assert p2p.perf.amp_bf16  # the site's default "fast"
    clf = classifier_config(config, ["city", "people", "forest"])
    assert (clf.epochs, clf.batch_size, clf.lr, clf.momentum, clf.patience) == (
        100, 16, 7.5e-4, 0.9, None,
    )  # fmt: skip
    assert clf.class_names == ("city", "people", "forest")
    assert (
        pix2pix_config({**config, "early_stopping": None}, space="lab", category="city")
        .early_stopping is None
    )  # fmt: skip


# ---------------------------------------------------------------- the commands


@pytest.mark.slow
@pytest.mark.usefixtures("one_cpu_thread")
def test_ensemble_train_colourise_evaluate(tmp_path, capsys):
    data = photos(tmp_path / "photos")
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "ensemble", "train", data, "--out", out, *TINY)
    assert code == 0, err
    assert "ensemble trained" in stdout

    state = json.loads((out / "ensemble.json").read_text())
    assert state["finished"] and state["categories"] == CATEGORIES and state["space"] == "lab"
    # The paper's per-category early stopping (method.md §4), "others" for the rest.
    early = state["config"]["early_stopping"]
    assert (early["city"]["k"], early["city"]["mu"]) == (10, 1.1)
    assert (early["people"]["k"], early["people"]["mu"]) == (10, 0.9)
    assert (early["others"]["k"], early["others"]["mu"]) == (20, 1.15)
    assert set(state["members"]) == {"classifier", *(f"generator-{c}" for c in CATEGORIES)}
    for name, member in state["members"].items():
        assert (out / member["best"]).is_file() and member["last_epoch"] == 2
        history = json.loads((out / name / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2]
    # Each generator saw its own category's images only (4 train, 1 val a category).
    checkpoint = read_file(out / "generator-city" / "checkpoint.pt")
    assert checkpoint["config"]["early_stopping"]["mu"] == 1.1
    split = json.loads((out / "split.json").read_text())
    assert split["counts"]["train"] == dict.fromkeys(CATEGORIES, 4)
    assert split["counts"]["test"] == dict.fromkeys(CATEGORIES, 1)

    # evaluate: each routing's tables in the site's form.
    code, stdout, err = run(capsys, "ensemble", "evaluate", out, "--device", "cpu", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report == json.loads((out / "evaluation.json").read_text())
    assert report["scored_at"]["at"] == "model" and report["scored_at"]["size"] == 32
    assert report["scored_at"]["test_image_sizes"] == [[32, 32]]  # the photographs' too
    assert set(report["routings"]) == {"predicted", "oracle", "soft"}
    for routing, metrics in report["routings"].items():
        assert metrics["routing"] == routing and metrics["test"]["n"] == 3
        assert set(metrics["per_category"]) == set(CATEGORIES)
        assert sum(metrics["classifier"]["confusion"], []).count(0) <= 9
        assert sum(map(sum, metrics["classifier"]["confusion"])) == 3
        assert set(metrics["references"]) == {"no_colour", "category_mean_chroma"}
        assert metrics["references"]["category_mean_chroma"]["train_images"] == dict.fromkeys(
            CATEGORIES, 4
        )
        tables = metrics["training"]["generators"]
        assert set(tables) == set(CATEGORIES) and tables["city"]["last_epoch"] == 2
        assert metrics["training"]["ensemble_val_gan_mean"] is not None
    # Compares the code with itself: the oracle-routed L1 reported beside every routing is
    # the oracle routing's own test L1.
    oracle = report["routings"]["oracle"]
    assert oracle["test"]["l1"] == pytest.approx(report["routings"]["predicted"]["test_oracle_l1"])
    code, stdout, _ = run(capsys, "ensemble", "evaluate", out, "--device", "cpu")
    assert code == 0 and "no colour" in stdout and "oracle routing" in stdout

    # colourise the test split (the default input), at each image's own size.
    coloured = tmp_path / "coloured"
    upload = tmp_path / "upload.zip"
    code, stdout, err = run(
        capsys, "ensemble", "colourise", out, "--out", coloured, "--zip", upload, "--quiet"
    )
    assert code == 0, err
    with (coloured / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["true_category"] for r in rows] == CATEGORIES
    assert {r["model"] for r in rows} == {"colourmodels ensemble run (lab, predicted routing)"}
    for row in rows:
        assert row["category"] in CATEGORIES
        assert load_rgb(coloured / row["file"]).size == load_rgb(data / row["original_name"]).size
    with zipfile.ZipFile(upload) as zf:
        assert sorted(zf.namelist()) == sorted(["manifest.csv", *(r["file"] for r in rows)])
    listing = json.loads((coloured / "colourise.json").read_text())
    for entry in listing["images"]:
        assert sum(entry["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        chosen = max(entry["probabilities"], key=entry["probabilities"].get)
        assert chosen == entry["category"]

    # Oracle routing of a folder: the category is the subfolder.
    code, _, err = run(
        capsys, "ensemble", "colourise", out, data, "--out", tmp_path / "all", "--routing",
        "oracle", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    with (tmp_path / "all" / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18 and all(r["category"] == r["true_category"] for r in rows)
    code, _, err = run(
        capsys, "ensemble", "colourise", out, data / "city", "--out", tmp_path / "x",
        "--routing", "oracle",
    )  # fmt: skip
    assert code == 2 and "oracle routing needs each image's category" in err


def test_ensemble_errors_in_words(tmp_path, capsys):
    flat = tmp_path / "flat"
    write_synthetic(tmp_path / "syn", per_category=2, size=32)
    flat.mkdir()
    for path in (tmp_path / "syn").rglob("*.png"):
        shutil.copy(path, flat / path.name)
    code, _, err = run(capsys, "ensemble", "train", flat, "--out", tmp_path / "r", *TINY)
    assert code == 2 and "one subfolder per category, at least two" in err
    assert "Traceback" not in err and not (tmp_path / "r" / "ensemble.json").exists()

    few = tmp_path / "few"  # city: 4 / 1 / 1 images; people: 2 / 0 / 0
    write_synthetic(tmp_path / "six", per_category=6, size=32)
    shutil.copytree(tmp_path / "six" / "city", few / "city")
    shutil.copytree(tmp_path / "syn" / "people", few / "people")
    code, _, err = run(capsys, "ensemble", "train", few, "--out", tmp_path / "r", *TINY)
    assert code == 2 and "no val image for the categories people" in err

    code, _, err = run(
        capsys, "ensemble", "train", tmp_path / "six", "--out", tmp_path / "r", *TINY,
        "--early-stopping", "forest", "10", "1",
    )  # fmt: skip
    assert code == 2 and "forest: not one of the categories" in err

    code, _, err = run(capsys, "ensemble", "evaluate", tmp_path / "nothing")
    assert code == 2 and "no ensemble.json" in err
    code, _, err = run(capsys, "ensemble", "colourise", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and "no ensemble.json" in err


def test_ensemble_help_cites_what_the_repository_holds(capsys):
    """The help cites the paper and the README, not a specification outside the repository."""
    for argv in (["ensemble", "--help"], ["ensemble", "train", "--help"], ["--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        shown = capsys.readouterr().out
        assert "method.md" not in shown, argv
    with pytest.raises(SystemExit):
        main(["ensemble", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "An Ensemble of Pix2Pix Models" in shown and "README.md" in shown


def _summary(l1: float, colourfulness: float, difference: float) -> dict:
    return {
        "l1": l1, "ssim": 0.633, "psnr": 20.5, "colourfulness": colourfulness,
        "colourfulness_difference": difference, "n": 3,
    }  # fmt: skip


def test_evaluate_table_separates_its_columns_and_says_its_size(capsys):
    from colourmodels.ensemble_cli import _print_tables

    routing = {
        "test": _summary(28.528, 1.06, -105.88),
        "references": {
            "no_colour": {"test": _summary(28.495, 0.0, -106.94)},
            "category_mean_chroma": {"test": _summary(27.1, 12.34, -94.6)},
        },
        "test_oracle_l1": 28.1,
        "classifier": {"macro_f1": 0.5, "accuracy": 0.6},
        "training": {"generators": {}},
    }
    report = {
        "images": 3,
        "space": "lab",
        "routings": {"predicted": routing},
        "scored_at": {"at": "model", "size": 32, "what": "", "test_image_sizes": [[64, 64]]},
    }
    _print_tables(report)
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if "colourful" in line)
    assert header.split() == ["L1", "SSIM", "PSNR", "colourful", "diff"]
    predicted = next(line for line in lines if line.strip().startswith("predicted routing"))
    assert predicted.split()[-2:] == ["1.06", "-105.88"]  # not "1.06-105.88"
    no_colour = next(line for line in lines if line.strip().startswith("no colour"))
    assert no_colour.split()[-2:] == ["0.00", "-106.94"]
    # Each cell ends under its column's title.
    for title, cell in zip(["L1", "SSIM", "PSNR", "colourful", "diff"], predicted.split()[2:]):
        assert header.index(title) + len(title) == predicted.index(cell) + len(cell), title
    assert "diff: the images' colourfulness minus the ground truth's" in out
    assert "scored at the model's size, 32 x 32 px" in out
    assert "the test images are 64 x 64 px" in out and "--at photo scores them" in out

    report["scored_at"]["at"] = "photo"
    _print_tables(report)
    out = capsys.readouterr().out
    assert "scored at each test image's own size (64 x 64 px)" in out
    assert "model's size" not in out and "--at photo" not in out


# ---------------------------------------------------------------- resume after a kill

# Test-only: loaded first in the child process (Python imports a ``sitecustomize`` found on
# the path), it kills the process with SIGKILL when it is about to put the KILL_AT-th
# checkpoint.pt of the folder KILL_IN in place: the epoch's files are half written, as when
# a machine is lost.
_KILLER = """
import os, signal
if os.environ.get("KILL_IN"):
    _replace = os.replace
    _seen = [0]

    def replace(src, dst, *args, **kwargs):
        dst = os.fspath(dst)
        if os.path.basename(dst) == "checkpoint.pt" and os.path.basename(
            os.path.dirname(dst)
        ) == os.environ["KILL_IN"]:
            _seen[0] += 1
            if _seen[0] == int(os.environ["KILL_AT"]):
                os.kill(os.getpid(), signal.SIGKILL)
        return _replace(src, dst, *args, **kwargs)

    os.replace = replace
"""


def _command(args: list, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    hooks = cwd / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(_KILLER)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hooks), str(REPO)]))
    env["OMP_NUM_THREADS"] = "1"
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "colourmodels", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tensors(value):
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items() if k not in ("seconds", "rng")}
    if isinstance(value, list | tuple):
        return [_tensors(v) for v in value]
    return value


def _same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.slow
def test_killed_ensemble_training_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    data = photos(tmp_path / "photos")
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    args = ["ensemble", "train", data, *TINY]

    # Killed while writing epoch 2's checkpoint of the second generator ("others").
    done = _command([*args, "--out", killed], tmp_path, KILL_IN="generator-others", KILL_AT="2")
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    state = json.loads((killed / "ensemble.json").read_text())
    assert set(state["members"]) == {"classifier", "generator-city"} and not state["finished"]
    assert read_file(killed / "generator-others" / "checkpoint.pt")["epoch"] == 1

    # Half trained: it cannot be used yet, and it cannot be resumed with other settings.
    code, _, err = run(capsys, "ensemble", "evaluate", killed)
    assert code == 2 and "not fully trained (generator-others, generator-people" in err
    other = [a if a != "8" else "16" for a in args]  # --width 16
    code, _, err = run(capsys, *other, "--out", killed)
    assert code == 2 and "other settings (width: 8 then, 16 now)" in err

    kept = (killed / "classifier" / "checkpoint.pt").read_bytes()
    epoch_one = read_file(killed / "generator-others" / "checkpoint.pt")["history"][0]
    done = _command([*args, "--out", killed], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # It resumed: the trained networks were kept, the interrupted one went on from epoch 1.
    assert (killed / "classifier" / "checkpoint.pt").read_bytes() == kept
    history = json.loads((killed / "generator-others" / "history.json").read_text())
    assert history[0]["seconds"] == epoch_one["seconds"] and len(history) == 2
    done = _command([*args, "--out", straight], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    for name in ("classifier", *(f"generator-{c}" for c in CATEGORIES)):
        for path in sorted((straight / name).glob("*.pt")):
            _same(
                _tensors(read_file(path)),
                _tensors(read_file(killed / name / path.name)),
                f"{name}/{path.name}",
            )
        a = json.loads((straight / name / "history.json").read_text())
        b = json.loads((killed / name / "history.json").read_text())
        assert _tensors(a) == _tensors(b)
    a = json.loads((straight / "ensemble.json").read_text())
    b = json.loads((killed / "ensemble.json").read_text())
    assert a == b and a["finished"]
    # Left behind by the kill: only the temporary file of the checkpoint it was writing.
    extra = {p.name for p in (killed / "generator-others").iterdir()}
    extra -= set(os.listdir(straight / "generator-others"))
    assert len(extra) == 1 and extra.pop().startswith(".checkpoint.pt.")


# ---------------------------------------------------------------- under torchrun


@pytest.mark.slow
def test_ensemble_train_under_torchrun(tmp_path, monkeypatch):
    from tests.colourmodels import test_distributed

    monkeypatch.setattr(test_distributed, "LAUNCH_TIMEOUT", 600)  # seven networks in turn
    data = photos(tmp_path / "photos")
    out = tmp_path / "run"
    done = test_distributed._torchrun(
        ["-m", "colourmodels", "ensemble", "train", str(data), "--out", str(out), *TINY],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("ensemble trained") == 1, done.stdout
    assert "2 processes (gloo)" in done.stderr

    # Rank 0 alone wrote; each network trained on both processes with equal replicas.
    assert test_distributed._written(tmp_path, 1) == []
    written = test_distributed._written(tmp_path, 0)
    assert written.count("checkpoint.pt") == 2 * 4 and "ensemble.json" in written
    state = json.loads((out / "ensemble.json").read_text())
    assert state["finished"] and len(state["members"]) == 4
    for member in state["members"].values():
        info = member["distributed"]
        assert info["world_size"] == 2 and info["per_rank_batch"] == 2
        assert info["replicas_identical"]
    assert set(os.listdir(tmp_path)) == {"photos", "run", "hooks", "writes"}


@pytest.mark.slow
def test_generators_trained_together_equal_those_trained_one_after_another(tmp_path, capsys):
    """``--together`` (the stacked trainer): every generator's files are the lone run's,
    tensor for tensor, on the CPU."""
    data = photos(tmp_path / "photos")
    apart, together = tmp_path / "apart", tmp_path / "together"
    assert run(capsys, "ensemble", "train", data, *TINY, "--out", apart)[0] == 0
    code, _, err = run(capsys, "ensemble", "train", data, *TINY, "--together", "--out", together)
    assert code == 0, err
    for category in CATEGORIES:
        name = f"generator-{category}"
        for path in sorted((apart / name).glob("*.pt")):
            _same(
                _tensors(read_file(path)),
                _tensors(read_file(together / name / path.name)),
                f"{name}/{path.name}",
            )
    a = json.loads((apart / "ensemble.json").read_text())
    b = json.loads((together / "ensemble.json").read_text())
    assert _tensors(a) == _tensors(b) and b["finished"]

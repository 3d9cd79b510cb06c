"""``python -m colourmodels ensemble train|colourise|evaluate``: the context ensemble
(the paper's method; README "Several GPU machines") without the site, with the site's code
(:mod:`colourmodels.ensemble`, :mod:`colourmodels.evaluation`).

``ensemble train FOLDER --out RUN``: FOLDER holds one subfolder per category (at least
two). It is split 0.75 / 0.15 / 0.10 by category from ``--split-seed`` (default ``--seed``,
which seeds the training) exactly as the site splits a data set imported from the same
folder with that seed (``manage.py import_images FOLDER --categories-from-folders --seed
S``), then the ResNet34 classifier
(``--classifier-epochs``, ``--classifier-patience``) and one Pix2Pix generator per category
(the paper's (k, μ) of its category, method.md §4) are trained one after another. RUN gets:

- ``split.json``: the data and its split (as ``train`` writes it);
- ``ensemble.json``: the state file: the run's configuration (the site's run
  configuration), its colour space and categories, and each network's outcome once it is
  trained (``members``; ``finished`` when all are);
- ``classifier/`` and ``generator-<category>/``: each network's ``checkpoint.pt``, its best
  and last model files and ``history.json``.

Running the same command again resumes: finished networks are kept, the one that was
interrupted continues from its last complete epoch, and the result is the one an
uninterrupted run gives (bit for bit on the CPU). Under ``torchrun`` each network trains
data-parallel on all the processes in turn (as ``train`` does: ``--batch`` and
``--classifier-batch`` are global batches; rank 0 alone writes).

``ensemble colourise RUN [INPUT] --out OUT``: colourises INPUT (an image folder; with
category subfolders for oracle routing), or by default RUN's test split, at each image's own
resolution, routed ``--routing predicted|oracle|soft``; writes the PNGs, ``manifest.csv``
(``file``, ``original_name``, ``category`` routed to, ``true_category``, ``model``: the
site's upload format, :mod:`worker.services.uploads`; text that starts like a spreadsheet
formula is written with a leading apostrophe, which the site takes off) and
``colourise.json``; ``--zip`` also writes the zip to upload as a run (**Model runs →
Upload a run** or ``manage.py upload_run``) to the data set imported from the same folder.

``ensemble evaluate RUN``: the site's evaluation of a trained run (``gpu.evaluate_run``) on
RUN's test split, for each routing asked (all three by default): the paper's Table 4 metrics
overall and per category, the classifier's test confusion matrix, macro-F1 and accuracy,
the oracle-routed L1, the references (no colour, per-category mean chroma) and the
generators' training tables, written to ``RUN/evaluation.json`` (each routing's entry in the
form of the site's ``ModelRun.metrics``) and printed as a table. It scores at the model's
size (each test image brought to it), as the site scores a run it trained; an upload of
``colourise``'s images is scored at their own size (each photograph's), so where the
photographs are larger than the model its numbers differ, and the table says so
(``scored_at`` in the file). ``--at photo`` colourises each test image at its own size as
``colourise`` does and scores it as the site scores their upload
(:func:`colourmodels.evaluation.colourised_image_metrics`, the upload's code).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli import (
    CLIError,
    _fractions,
    _image_files,
    _note,
    _Parser,
    _positive_int,
    _print_json,
    _ProgressBars,
    _rel,
    _resolve_device,
    _shared_cli_error,
    _split_folder,
    _split_records,
    _test_split,
    _write_json,
    _write_upload,
)
from .cpus import usable_cpus

__all__ = ["add_parser"]

STATE_FILE = "ensemble.json"
STATE_FORMAT = "colourmodels.ensemble"
STATE_VERSION = 1
CLASSIFIER_DIR = "classifier"
EVALUATION_FILE = "evaluation.json"
#: Fields of the configuration that may change when a run resumes (train further).
_RESUMABLE = {"epochs"}


def generator_dir(category: str) -> str:
    return f"generator-{category}"


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """What rank 0 finds (sent to the other ranks under torchrun)."""

    split: Any
    categories: list[str]
    config: dict[str, Any]
    state: dict[str, Any]
    resuming: bool


def _config(args: argparse.Namespace, categories: list[str]) -> dict[str, Any]:
    """The run configuration of the options: the site's, with the paper's defaults."""
    from .early_stopping import EarlyStoppingConfig
    from .ensemble import default_config

    config = default_config(categories, ensemble=True)
    config.update(
        image_size=args.size,
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch,
        seed=args.seed,
        fast=bool(args.fast),
        routing=args.routing,
    )
    config["classifier"].update(
        epochs=args.classifier_epochs,
        batch_size=args.classifier_batch,
        patience=args.classifier_patience,
        shift=args.classifier_shift,
    )
    if args.no_early_stopping:
        config["early_stopping"] = None
        return config
    early = config["early_stopping"]
    for override in args.early_stopping or []:
        category, k, mu = override
        if category not in categories and category not in ("baseline", "others"):
            raise CLIError(
                f"--early-stopping {category}: not one of the categories ({', '.join(categories)})"
            )
        try:
            if float(k) != int(float(k)):
                raise ValueError(f"K must be a whole number, got {k}")
            early[category] = EarlyStoppingConfig(int(float(k)), float(mu)).to_dict()
        except ValueError as exc:
            raise CLIError(f"--early-stopping {category}: {exc}") from None
    for setting in early.values():
        setting["monitor"] = args.monitor
    return config


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b and key not in _RESUMABLE:
            found.append(f"{prefix}{key}: {a!r} then, {b!r} now")
    return found


def _prepare(args: argparse.Namespace, ddp: Any) -> _Prepared:
    out = Path(args.out)
    state_path = out / STATE_FILE
    resuming = state_path.is_file() and not args.restart
    for name, batch in (("--batch", args.batch), ("--classifier-batch", args.classifier_batch)):
        if ddp is not None and batch % ddp.world_size:
            raise CLIError(
                f"{name} {batch} is the global batch (all processes together) and must "
                f"divide evenly among the {ddp.world_size} processes"
            )

    def check(scan: Any) -> None:
        if len(scan.categories) < 2:
            raise CLIError(
                f"{args.folder}: an ensemble needs one subfolder per category, at least two "
                f"(found {len(scan.categories)})"
            )

    scan, split = _split_folder(args, resuming=resuming, check=check)
    categories = list(scan.categories)
    for part in ("train", "val"):
        have = {r.category for r in getattr(split, part)}
        missing = [c for c in categories if c not in have]
        if missing:
            raise CLIError(
                f"{args.folder}: no {part} image for the categories {', '.join(missing)} "
                "(each needs at least one training and one validation image)"
            )
    config = _config(args, categories)
    try:  # the trainers' checks, before anything trains
        from .ensemble import classifier_config, pix2pix_config

        classifier_config(config, categories)
        for category in categories:
            pix2pix_config(config, space=args.space, category=category)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    state: dict[str, Any] = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "space": args.space,
        "categories": categories,
        "config": config,
        "members": {},
        "finished": False,
    }
    if resuming:
        old = _read_state(out)
        problems = []
        if old.get("space") != args.space:
            problems.append(f"space: {old.get('space')!r} then, {args.space!r} now")
        if old.get("categories") != categories:
            problems.append(f"categories: {old.get('categories')} then, {categories} now")
        problems += _differences(old.get("config", {}), config)
        if problems:
            raise CLIError(
                f"{out} holds an ensemble trained with other settings ("
                + "; ".join(problems)
                + "); use another --out, or --restart to start afresh"
            )
        state["members"] = old.get("members", {})
    _write_json(state_path, state)
    return _Prepared(split, categories, config, state, resuming)


def _read_state(run: Path) -> dict[str, Any]:
    path = run / STATE_FILE
    if not path.is_file():
        raise CLIError(
            f"{run}: no {STATE_FILE}; train an ensemble there first "
            "(python -m colourmodels ensemble train FOLDER --out RUN)"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CLIError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CLIError(f"{path}: not an ensemble's state file")
    if state.get("version") != STATE_VERSION:
        raise CLIError(f"{path}: unsupported version {state.get('version')!r}")
    return state


def _loader_workers(args: argparse.Namespace, device: Any, ddp: Any) -> int:
    from .data import loader_kwargs

    if args.workers is not None:
        return int(args.workers)
    if ddp is None:
        return int(loader_kwargs(device)["num_workers"])
    cpus = max(1, usable_cpus() // max(1, ddp.local_world_size))
    if device.type == "cuda":
        return min(8, max(1, cpus - 1))
    return int(loader_kwargs(device, cpus=cpus)["num_workers"])


class _MemberProgress(_ProgressBars):
    """A network's progress on stderr: a tqdm bar per phase, a line per epoch with every
    loss, each named after the network."""

    show_losses = False

    def __init__(self, name: str, *, quiet: bool) -> None:
        super().__init__(quiet=quiet, name=name)
        self.name = name

    def epoch_line(self, event: Any) -> str:
        shown = [
            f"{k} {v:.4f}"
            for k, v in event.losses.items()
            if k not in ("epoch", "seconds") and isinstance(v, float)
        ]
        return f"{self.name} epoch {event.epoch}/{event.steps}: " + ", ".join(shown)


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import distributed

    try:
        job = distributed.Session(args.device)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    with job as ddp:
        return _train(args, ddp)


def _train(args: argparse.Namespace, ddp: Any) -> int:
    from .checkpoints import CheckpointError
    from .data import ColourisationDataset
    from .ensemble import GeneratorJob, train_generators, train_router
    from .training.common import ConfigMismatchError

    if args.together and ddp is not None:
        raise CLIError(
            "--together steps the generators in one process on one device; under torchrun "
            "leave it out (the processes then share each generator in turn)"
        )
    main = ddp is None or ddp.is_main
    out = Path(args.out)
    device = ddp.device if ddp is not None else _resolve_device(args.device)
    prepared = _prepare(args, ddp) if ddp is None else ddp.share(lambda: _prepare(args, ddp))
    split, categories, config = prepared.split, prepared.categories, prepared.config
    state = prepared.state
    space, size = args.space, config["image_size"]
    workers = _loader_workers(args, device, ddp)
    resume = not args.restart
    if main:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in split.parts().items())
        _note(
            f"ensemble of {len(categories)} categories ({', '.join(categories)}); images "
            f"{counts}; device {device}"
            + (f"; {ddp.world_size} processes ({ddp.backend})" if ddp is not None else "")
            + ("; resuming" if prepared.resuming else "")
        )

    def dataset(records: list, train: bool) -> Any:
        return ColourisationDataset(records, space, size, categories, train=train)

    def record(name: str, result: Any, kind: str) -> None:
        """The network's outcome in the state file and its history.json (rank 0)."""
        if not main:
            return
        _write_json(out / name / "history.json", result.history)
        entry = {
            "kind": kind,
            "folder": name,
            "best_epoch": result.best_epoch,
            "stopped_epoch": result.stopped_epoch,
            "last_epoch": result.last_epoch,
            "best": _rel(
                result.best_classifier_path if kind == "classifier" else result.best_generator_path,
                out,
            ),
        }
        if kind == "classifier":
            entry["best_val_macro_f1"] = result.best_macro_f1
        else:
            entry["best_val"] = result.best_val
            entry["monitor"] = result.monitor
        if result.distributed is not None:
            entry["distributed"] = result.distributed
        state["members"][name] = entry
        _write_json(out / STATE_FILE, state)

    runtime = {"resume": resume, "device": str(device), "num_workers": workers}
    try:
        bars = _MemberProgress("classifier", quiet=args.quiet or not main)
        try:
            result = train_router(
                config,
                categories,
                train_set=dataset(split.train, True),
                val_set=dataset(split.val, False),
                out_dir=out / CLASSIFIER_DIR,
                on_progress=bars,
                **runtime,
            )
        finally:
            bars.close()
        record(CLASSIFIER_DIR, result, "classifier")

        jobs = [
            GeneratorJob(
                category,
                dataset([r for r in split.train if r.category == category], True),
                dataset([r for r in split.val if r.category == category], False),
                out / generator_dir(category),
                _MemberProgress(f"generator {category}", quiet=args.quiet or not main),
            )
            for category in categories
        ]

        def done(job: GeneratorJob, result: Any) -> None:
            job.on_progress.close()
            record(generator_dir(job.category), result, "generator")

        train_generators(config, jobs, space=space, on_done=done, together=args.together, **runtime)
    except CheckpointError as exc:
        raise _shared_cli_error(f"cannot resume from {out}: {exc}", exc) from None
    except ConfigMismatchError as exc:
        raise _shared_cli_error(f"{exc} (--restart starts afresh)", exc) from None

    if main:
        state["finished"] = True
        _write_json(out / STATE_FILE, state)
        for name, entry in state["members"].items():
            stop = entry["stopped_epoch"]
            print(
                f"{name}: best epoch {entry['best_epoch']}, "
                + (f"stopped early at epoch {stop}" if stop else f"ran to {entry['last_epoch']}")
            )
        print(f"ensemble trained in {out}")
    return 0


# --------------------------------------------------------------------------------------
# loading a trained ensemble
# --------------------------------------------------------------------------------------


@dataclass
class _Ensemble:
    state: dict[str, Any]
    space: str
    categories: list[str]
    image_size: int
    classifier: Any
    generators: dict[str, Any]


def _load_ensemble(run: Path, device: Any) -> _Ensemble:
    from .checkpoints import CheckpointError, load_classifier, load_generator

    state = _read_state(run)
    categories = list(state["categories"])
    members = state.get("members", {})
    names = [CLASSIFIER_DIR] + [generator_dir(c) for c in categories]
    missing = [n for n in names if n not in members]
    if missing:
        raise CLIError(
            f"{run}: the ensemble is not fully trained ({', '.join(missing)} not yet); run "
            "the same ensemble train command again to finish it"
        )
    try:
        classifier, meta = load_classifier(run / members[CLASSIFIER_DIR]["best"], device)
        generators = {
            c: load_generator(run / members[generator_dir(c)]["best"], device)[0]
            for c in categories
        }
    except (FileNotFoundError, CheckpointError) as exc:
        raise CLIError(f"{run}: {exc}") from None
    if list(meta.get("class_names") or []) != categories:
        raise CLIError(f"{run}: the classifier's classes do not match the categories")
    for model in (classifier, *generators.values()):
        model.eval()
    return _Ensemble(
        state,
        str(state["space"]),
        categories,
        int(state["config"]["image_size"]),
        classifier,
        generators,
    )


def _load_images(paths: list[Path]) -> list[Any]:
    from .data import ImageError, load_rgb

    try:
        return [load_rgb(path) for path in paths]
    except ImageError as exc:
        raise CLIError(str(exc)) from None


def _route_photos(
    ensemble: _Ensemble, images: list[Any], routings: list[str], truth: list[int], device: Any
) -> dict[str, Any]:
    """Route a batch of photographs as ``ensemble colourise`` does (each brought to the
    model's size, the generators run once): per routing its
    :class:`~colourmodels.ensemble.Routed`, chroma at the model's size on the CPU."""
    import torch

    from .ensemble import route_outputs, run_members
    from .inference import _model_input

    luma = torch.cat([_model_input(im, ensemble.space, ensemble.image_size) for im in images])
    generators = [ensemble.generators[c] for c in ensemble.categories]
    with torch.inference_mode():
        outputs, probs = run_members(luma.to(device), generators, ensemble.classifier)
        routed = {r: route_outputs(outputs, probs, r, truth) for r in routings}
    for result in routed.values():
        result.chroma = result.chroma.float().cpu()
        if result.oracle is not None:
            result.oracle = result.oracle.float().cpu()
    return routed


# --------------------------------------------------------------------------------------
# colourise
# --------------------------------------------------------------------------------------


def _cmd_colourise(args: argparse.Namespace) -> int:
    from PIL import PngImagePlugin

    from .inference import _recombine

    device = _resolve_device(args.device)
    run = Path(args.run)
    ensemble = _load_ensemble(run, device)
    categories, space = ensemble.categories, ensemble.space
    routing = args.routing or ensemble.state["config"].get("routing", "predicted")
    if args.input is None:
        root, items = _test_split(run)
    else:
        root = Path(args.input)
        if not root.is_dir():
            raise CLIError(f"not a folder: {root}")
        files = _image_files(root)
        if not files:
            raise CLIError(f"{root}: no image files")
        items = []
        for path in files:
            top = Path(_rel(path, root)).parts[0]
            items.append((path, top if top in categories and top != path.name else None))
    if routing == "oracle":
        unknown = [p for p, c in items if c not in categories]
        if unknown:
            raise CLIError(
                f"oracle routing needs each image's category (its subfolder); "
                f"{len(unknown)} image(s) have none, e.g. {_rel(unknown[0], root)}"
            )
    out = Path(args.out)
    if out.resolve() == root.resolve():
        raise CLIError(f"{out} would overwrite its input; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    model = f"colourmodels ensemble {run.name} ({space}, {routing} routing)"
    settings_base = {
        "run": str(run.resolve()),
        "space": space,
        "model_size": ensemble.image_size,
        "routing": routing,
    }
    index = {c: i for i, c in enumerate(categories)}
    rows, entries = [], []
    for start in range(0, len(items), args.batch):
        chunk = items[start : start + args.batch]
        images = _load_images([path for path, _ in chunk])
        truth = [index.get(c, -1) if c else -1 for _, c in chunk]
        routed = _route_photos(ensemble, images, [routing], truth, device)[routing]
        chroma = routed.chroma
        for i, ((path, category), image) in enumerate(zip(chunk, images, strict=True)):
            name = _rel(path, root)
            target_name = Path(name).with_suffix(".png").as_posix()
            routed_to = categories[routed.chosen[i]]
            result = _recombine(image, chroma[i : i + 1], space)
            settings = {**settings_base, "input": str(path), "category": routed_to}
            info = PngImagePlugin.PngInfo()
            info.add_text("colourmodels", json.dumps(settings))
            target = out / target_name
            target.parent.mkdir(parents=True, exist_ok=True)
            result.save(target, format="PNG", pnginfo=info)
            rows.append((target_name, name, routed_to, category or "", model))
            probs = routed.probs[i].tolist() if routed.probs is not None else None
            entries.append(
                {
                    "input": str(path),
                    "output": target_name,
                    "category": routed_to,
                    "true_category": category,
                    "probabilities": dict(zip(categories, probs, strict=True)),
                }
            )
        if not args.quiet:
            _note(f"colourised {min(start + args.batch, len(items))}/{len(items)}")
    _write_json(out / "colourise.json", {**settings_base, "images": entries})
    _write_upload(out, rows, args.zip)
    print(f"{len(rows)} image(s) written to {out} ({space}, {routing} routing)")
    return 0


# --------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------


def _history_tables(run: Path, state: dict[str, Any]) -> dict[str, Any]:
    from .evaluation import training_tables

    generators = {}
    for category in state["categories"]:
        entry = state["members"][generator_dir(category)]
        history_path = run / entry["folder"] / "history.json"
        history = json.loads(history_path.read_text(encoding="utf-8"))
        generators[category] = {
            "records": {int(r["epoch"]): r for r in history},
            "best_epoch": entry["best_epoch"],
            "stopped_epoch": entry["stopped_epoch"],
        }
    return training_tables(generators, ensemble=True)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import load_rgb
    from .evaluation import train_chroma_means

    device = _resolve_device(args.device)
    run = Path(args.run)
    ensemble = _load_ensemble(run, device)
    categories, space, size = ensemble.categories, ensemble.space, ensemble.image_size
    routings = list(dict.fromkeys(args.routing or ("predicted", "oracle", "soft")))
    _, parts = _split_records(run)
    if not parts["test"]:
        raise CLIError(f"{run}: the test split is empty")
    by_category: dict[str, list[Path]] = {}
    for path, category in parts["train"]:
        by_category.setdefault(category or "", []).append(path)
    photo = args.at == "photo"
    # The mean-chroma reference's means: at the model's size for a trained run, at each
    # training image's own for an upload (worker.services.references).
    means = train_chroma_means(
        by_category,
        categories,
        space=space,
        image_size=None if photo else size,
        load=lambda p: load_rgb(p),
    )
    score = _score_photos if photo else _score_at_model_size
    tables = score(args, ensemble, routings, parts["test"], means, device)
    training = _history_tables(run, ensemble.state)
    report = {
        "space": space,
        "categories": categories,
        "images": len(parts["test"]),
        "scored_at": _scored_at(args.at, size, [path for path, _ in parts["test"]]),
        "routings": {r: {**tables[r], "training": training} for r in routings},
    }
    _write_json(run / EVALUATION_FILE, report)
    if args.json:
        _print_json(report)
    else:
        _print_tables(report)
    return 0


def _score_at_model_size(
    args: argparse.Namespace, ensemble: _Ensemble, routings: list[str], test: list, means, device
) -> dict[str, dict]:
    """Each routing's tables as the site's evaluation of a run it trained gives them
    (``gpu.evaluate_run``): each test image brought to the model's size, its true luminance
    with the routed chroma, in floating point."""
    import torch

    from .data import ColourisationDataset
    from .data.folders import ImageRecord
    from .evaluation import TestEvaluation

    records = [ImageRecord(path, category) for path, category in test]
    test_set = ColourisationDataset(
        records, ensemble.space, ensemble.image_size, ensemble.categories, train=False
    )
    evaluation = TestEvaluation(
        space=ensemble.space,
        categories=ensemble.categories,
        generators=ensemble.generators,
        classifier=ensemble.classifier,
        routings=routings,
        means=means,
    )
    loader = torch.utils.data.DataLoader(test_set, batch_size=args.batch, shuffle=False)
    offset = 0
    with torch.inference_mode():
        for luma, chroma, cat in loader:
            names = [records[offset + i].category or "" for i in range(len(luma))]
            offset += len(luma)
            evaluation.add(luma.to(device), chroma.to(device), cat, names)
    return {r: evaluation.tables(r) for r in routings}


def _score_photos(
    args: argparse.Namespace, ensemble: _Ensemble, routings: list[str], test: list, means, device
) -> dict[str, dict]:
    """Each routing's tables as the site scores an upload of ``ensemble colourise
    --routing R``'s images (:mod:`worker.services.uploads`): each photograph colourised at
    its own size (the same code as ``colourise``), scored in 8 bits with its own luminance
    by :func:`colourmodels.evaluation.colourised_image_metrics`, the references at the same
    size; the classifier's table as at the model's size (it sees the same input), the
    oracle-routed L1 at the photographs' size."""
    from .evaluation import (
        ReferenceScores,
        classifier_table,
        colourised_image_metrics,
        mean,
        metrics_summary,
    )
    from .inference import _recombine

    space, categories = ensemble.space, ensemble.categories
    index = {c: i for i, c in enumerate(categories)}
    references = ReferenceScores(space, means)
    per_image: dict[str, list[tuple[str, dict]]] = {r: [] for r in routings}
    oracle_l1: list[float | None] = []
    truths: list[int] = []
    predictions: list[int] = []
    for start in range(0, len(test), args.batch):
        chunk = test[start : start + args.batch]
        images = _load_images([path for path, _ in chunk])
        truth = [index.get(c, -1) if c else -1 for _, c in chunk]
        routed = _route_photos(ensemble, images, routings, truth, device)
        for i, (image, (_, category)) in enumerate(zip(images, chunk, strict=True)):
            name = category or ""
            for n, routing in enumerate(routings):
                output = _recombine(image, routed[routing].chroma[i : i + 1], space)
                metrics = colourised_image_metrics(
                    output,
                    image,
                    space,
                    references=references if n == 0 else None,
                    category=name,
                    index=truth[i],
                )
                per_image[routing].append((name, metrics))
            first = routed[routings[0]]
            if truth[i] >= 0:
                oracle = _recombine(image, first.oracle[i : i + 1], space)
                oracle_l1.append(colourised_image_metrics(oracle, image, space)["l1"])
        first = routed[routings[0]]
        truths += truth
        predictions += first.predicted
    classifier = classifier_table(truths, predictions, categories)
    return {
        r: {
            **metrics_summary(per_image[r]),
            "routing": r,
            "references": references.stored(),
            "classifier": classifier,
            "test_oracle_l1": mean(oracle_l1),
        }
        for r in routings
    }


def _scored_at(at: str, model_size: int, test_images: list[Path]) -> dict[str, Any]:
    """What the evaluation scores at (``at``: "model", the model's size, each test image
    brought to it, as the site scores a run it trained; "photo", each test image's own
    size, as ``ensemble colourise`` writes them and the site scores their upload) and the
    test images' own sizes."""
    from .data import ImageError, probe_image

    sizes: set[tuple[int, int]] = set()
    for path in test_images:
        try:
            sizes.add(probe_image(path)[1])
        except (ImageError, OSError):
            continue
    what = {
        "model": "the model's size, as the site scores a run it trained (gpu.evaluate_run)",
        "photo": "each test image's own size, as the site scores an upload of "
        "ensemble colourise's images (cpu.evaluate_upload)",
    }[at]
    return {
        "at": at,
        "size": model_size,
        "what": what,
        "test_image_sizes": [list(size) for size in sorted(sizes)],
    }


#: The table's columns: metric, title, width, digits; each cell follows a separator.
_COLUMNS = (
    ("l1", "L1", 8, 3),
    ("ssim", "SSIM", 6, 3),
    ("psnr", "PSNR", 6, 2),
    ("colourfulness", "colourful", 9, 2),
    ("colourfulness_difference", "diff", 8, 2),
)
_SEPARATOR = "  "


def _row(label: str, summary: dict[str, Any] | None) -> str:
    cells = []
    for key, _, width, digits in _COLUMNS:
        value = (summary or {}).get(key)
        cells.append(f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}")
    return f"  {label:<24}" + "".join(_SEPARATOR + cell for cell in cells)


def _size_words(sizes: list[list[int]]) -> str:
    return ", ".join(f"{w} x {h}" for w, h in sizes)


def _print_tables(report: dict[str, Any]) -> None:
    from .evaluation import beats_no_colour, routing_holds_back

    routings = report["routings"]
    first = next(iter(routings.values()))
    references = first["references"]
    print(f"test split: {report['images']} images, {report['space']} (the paper's Table 4)")
    scored = report.get("scored_at")
    photo = bool(scored) and scored.get("at") == "photo"
    if photo:
        print(
            f"scored at each test image's own size ({_size_words(scored['test_image_sizes'])} "
            "px), as ensemble colourise writes them and the site scores their upload"
        )
    elif scored:
        size = scored["size"]
        print(
            f"scored at the model's size, {size} x {size} px (each test image brought to it), "
            "as the site scores a run it trained itself"
        )
    print(
        f"  {'':<24}" + "".join(f"{_SEPARATOR}{title:>{width}}" for _, title, width, _ in _COLUMNS)
    )
    for routing, metrics in routings.items():
        print(_row(f"{routing} routing", metrics["test"]))
    print(_row("no colour", references["no_colour"]["test"]))
    mean_chroma = references["category_mean_chroma"]
    print(_row("category mean chroma", mean_chroma.get("test")))
    if first["test_oracle_l1"] is not None:
        print(f"  {'oracle-routed L1':<24}{_SEPARATOR}{first['test_oracle_l1']:8.3f}")
    print(
        "  diff: the images' colourfulness minus the ground truth's (Hasler & Suesstrunk; "
        "below 0: less colourful than the photographs)"
    )
    if scored and not photo:
        others = [s for s in scored["test_image_sizes"] if s != [scored["size"]] * 2]
        if others:
            print(
                f"note: the test images are {_size_words(scored['test_image_sizes'])} px; "
                "ensemble colourise writes them at that size, and the site scores an upload "
                "of them at that size, which gives other numbers than these; --at photo "
                "scores them as the site will"
            )
    classifier = first["classifier"]
    print(
        f"classifier on the test split: macro-F1 {classifier['macro_f1']:.3f}, "
        f"accuracy {classifier['accuracy']:.3f}"
    )
    no_colour = references["no_colour"]["test"]["l1"]
    for routing, metrics in routings.items():
        l1 = metrics["test"]["l1"]
        if beats_no_colour(l1, no_colour) is False:
            print(f"{routing} routing does not beat no colour (L1 {l1:.3f} vs {no_colour:.3f})")
        if routing_holds_back(l1, metrics["test_oracle_l1"], routing):
            print(
                f"{routing} routing holds the ensemble back: L1 {l1:.3f} against "
                f"{metrics['test_oracle_l1']:.3f} with oracle routing"
            )
    for category, table in first["training"]["generators"].items():
        stop = table["stopped_epoch"]
        print(
            f"generator {category}: best epoch {table['best_epoch']}, last {table['last_epoch']}"
            + (f" (early stopping at {stop})" if stop else "")
        )


# --------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------


def _fraction_of_side(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to under 0.5, got {text}")
    return value


def add_parser(commands: Any) -> None:
    """The ``ensemble`` command and its subcommands, under ``commands``."""
    from .ensemble import ROUTINGS

    ensemble = commands.add_parser(
        "ensemble",
        help="the context ensemble: train, colourise, evaluate",
        description="A ResNet34 classifier routing each image to one Pix2Pix generator per "
        "category: the method of the paper 'Attaining Context Awareness in Image "
        "Colourisation: An Ensemble of Pix2Pix Models' (README.md, 'Several GPU machines': "
        "'An ensemble without the site').",
    )
    sub = ensemble.add_subparsers(dest="ensemble_command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train the classifier and one generator per category",
        description="Train on FOLDER (one subfolder per category), split 0.75/0.15/0.10 "
        "stratified by category as the site splits it; resumes when OUT holds a run.",
    )
    train.add_argument("folder")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--space", choices=("lab", "yuv"), default="lab")
    train.add_argument("--size", type=_positive_int, default=256, help="image side (power of 2)")
    train.add_argument("--width", type=_positive_int, default=64, help="base width (ngf = ndf)")
    train.add_argument("--epochs", type=_positive_int, default=200, help="generators' maximum")
    train.add_argument(
        "--batch", type=_positive_int, default=16, help="generators' batch (global under torchrun)"
    )
    train.add_argument("--classifier-epochs", type=_positive_int, default=100)
    train.add_argument("--classifier-batch", type=_positive_int, default=16)
    train.add_argument(
        "--classifier-patience",
        type=_positive_int,
        default=None,
        help="stop the classifier once its validation accuracy has not improved for N "
        "epochs (default: train all its epochs, as the paper)",
    )
    train.add_argument(
        "--classifier-shift",
        type=_fraction_of_side,
        default=0.0,
        help="translate each training image of the classifier by up to this fraction of its "
        "side at random (default 0: none, as the paper; the demo uses 0.125)",
    )
    stopping = train.add_mutually_exclusive_group()
    stopping.add_argument(
        "--early-stopping",
        nargs=3,
        action="append",
        metavar=("CATEGORY", "K", "MU"),
        help="a category's Prechelt PQ strip length and threshold (repeatable; default: the "
        "paper's per category, 'others' for a category it does not name)",
    )
    stopping.add_argument("--no-early-stopping", action="store_true")
    train.add_argument("--monitor", choices=("total", "gan"), default="total")
    train.add_argument("--routing", choices=ROUTINGS, default="predicted", help="default routing")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    train.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the split alone (default: --seed): the seed of the site's data set",
    )
    train.add_argument(
        "--fractions", type=_fractions, default=(0.75, 0.15, 0.10), help="TRAIN,VAL,TEST"
    )
    train.add_argument("--device", default="auto")
    train.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    train.add_argument("--fast", action="store_true", help="bf16 autocast, CUDA graphs, ...")
    train.add_argument("--keep-grayscale", action="store_true")
    train.add_argument(
        "--together",
        action="store_true",
        help="step the generators together in one process on one device (not under torchrun)",
    )
    train.add_argument("--restart", action="store_true", help="ignore an existing run")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(handler=_cmd_train)

    col = sub.add_parser(
        "colourise",
        aliases=["colorize"],
        help="colour a folder (default: the run's test split), routed",
    )
    col.add_argument("run")
    col.add_argument("input", nargs="?", default=None, help="image folder (default: test split)")
    col.add_argument("--out", required=True)
    col.add_argument("--routing", choices=ROUTINGS, default=None, help="default: the run's")
    col.add_argument("--zip", default=None, help="also write this zip, ready to upload")
    col.add_argument("--device", default="auto")
    col.add_argument("--batch", type=_positive_int, default=8)
    col.add_argument("--quiet", action="store_true")
    col.set_defaults(handler=_cmd_colourise)

    ev = sub.add_parser("evaluate", help="the site's tables on the run's test split, per routing")
    ev.add_argument("run")
    ev.add_argument(
        "--routing",
        choices=ROUTINGS,
        action="append",
        help="a routing to score (repeatable; default: all three)",
    )
    ev.add_argument(
        "--at",
        choices=("model", "photo"),
        default="model",
        help="model (default): score at the model's size, each test image brought to it, as "
        "the site scores a run it trained; photo: colourise each test image at its own size "
        "as 'ensemble colourise' does and score it as the site scores that upload",
    )
    ev.add_argument("--device", default="auto")
    ev.add_argument("--batch", type=_positive_int, default=16)
    ev.add_argument("--json", action="store_true", help="print every number as JSON")
    ev.set_defaults(handler=_cmd_evaluate)

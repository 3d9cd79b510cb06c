"""The context ensemble (method.md §5): a ResNet34 classifier that routes each grayscale
image to one of the per-category Pix2Pix generators, each trained on its category's images
with that category's early stopping (method.md §4).

One code for the site and the command line: the site's workers (one Celery task a network,
``worker/services/training.py``, and the evaluation, ``worker/services/evaluation.py``) and
``python -m colourmodels ensemble`` (:mod:`colourmodels.ensemble_cli`) both turn a run's
configuration into the trainers' configurations here (:func:`pix2pix_config`,
:func:`classifier_config`), train each network with :func:`train_generator` and
:func:`train_router`, and route with :func:`route`.

**The configuration** is the site's run configuration (``ModelRun.config``), a plain dict:
``image_size``, ``width``, ``epochs``, ``batch_size``, ``lambda_l1``, ``early_stopping``
(``{"baseline": {k, mu, monitor}, category: {...}, ...}``, or None for none), ``routing``,
``classifier`` (``epochs``, ``batch_size``, ``lr``, ``patience``, ``shift``: see
:class:`~colourmodels.training.ClassifierConfig`), ``seed``, ``fast``.
:func:`default_config` gives the paper's settings.

**Routing** (:func:`route`): "predicted" sends each image to the generator of the
classifier's most probable category (the paper's f(g) = G_Res(g)(g)); "oracle" to its true
category's (the classifier's errors taken out); "soft" mixes the generators' chroma weighted
by the classifier's probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colourmodels.early_stopping import PAPER_SETTINGS, EarlyStoppingConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ROUTINGS",
    "GeneratorJob",
    "Routed",
    "classifier_config",
    "data_problem",
    "default_config",
    "early_stopping_for",
    "paper_early_stopping",
    "pix2pix_config",
    "route",
    "route_outputs",
    "run_members",
    "train_generator",
    "train_generators",
    "train_router",
]

ROUTINGS = ("predicted", "oracle", "soft")


def paper_early_stopping(categories: Sequence[str], *, ensemble: bool) -> dict[str, dict]:
    """The paper's (k, μ): the baseline's, and for an ensemble each category's (a category
    the paper does not name gets its "others" setting)."""
    early = {"baseline": PAPER_SETTINGS["baseline"].to_dict()}
    if ensemble:
        for category in categories:
            early[category] = PAPER_SETTINGS.get(category, PAPER_SETTINGS["others"]).to_dict()
    return early


def default_config(categories: Sequence[str], *, ensemble: bool = True) -> dict:
    """The paper's settings (method.md §3–5) as a run configuration."""
    return {
        "image_size": 256,
        "width": 64,
        "epochs": 200,
        "batch_size": 16,
        "lambda_l1": 100.0,
        "early_stopping": paper_early_stopping(categories, ensemble=ensemble),
        "routing": "predicted",
        # patience None: the paper trains the classifier all 100 epochs (keeping the best
        # validation macro-F1); a number stops it once validation accuracy stalls that long.
        "classifier": {"epochs": 100, "batch_size": 16, "lr": 7.5e-4, "patience": None},
        "seed": 0,
        "fast": True,
    }


def early_stopping_for(config: Mapping[str, Any], category: str) -> EarlyStoppingConfig | None:
    """The early stopping of the generator of ``category`` ("" or None: a baseline's): the
    category's own setting, else "others", else the baseline's; None when the configuration
    has none."""
    early = config.get("early_stopping")
    if not early:
        return None
    setting = early.get(category or "baseline") or early.get("others") or early["baseline"]
    return EarlyStoppingConfig(**setting)


def pix2pix_config(
    config: Mapping[str, Any],
    *,
    space: str,
    category: str,
    device: str = "auto",
    num_workers: int = 0,
):
    """The :class:`~colourmodels.training.Pix2PixConfig` of the generator of ``category``
    ("" for a baseline's). ``device`` and ``num_workers`` say where it runs (they may change
    when a run resumes)."""
    from colourmodels.training import PerformanceOptions, Pix2PixConfig

    fast = bool(config.get("fast"))
    return Pix2PixConfig(
        image_size=config["image_size"],
        width=config["width"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        lambda_l1=float(config.get("lambda_l1", 100.0)),
        early_stopping=early_stopping_for(config, category),
        seed=config.get("seed", 0),
        colour_space=space,
        perf=PerformanceOptions.fast() if fast else PerformanceOptions.reference(),
        device=device,
        num_workers=num_workers,
    )


def classifier_config(
    config: Mapping[str, Any],
    categories: Sequence[str],
    *,
    device: str = "auto",
    num_workers: int = 0,
):
    """The :class:`~colourmodels.training.ClassifierConfig` of an ensemble's router."""
    from colourmodels.training import ClassifierConfig

    settings = config["classifier"]
    return ClassifierConfig(
        num_classes=len(categories),
        class_names=tuple(categories),
        epochs=settings["epochs"],
        batch_size=settings.get("batch_size", 16),
        lr=settings.get("lr", 7.5e-4),
        seed=config.get("seed", 0),
        patience=settings.get("patience"),
        shift=float(settings.get("shift") or 0.0),
        device=device,
        num_workers=num_workers,
    )


def data_problem(category: str, train_set: Any, val_set: Any) -> str | None:
    """Why the generator of ``category`` ("" for a baseline) cannot train on these sets, in
    words; None when it can."""
    if len(train_set) == 0 or len(val_set) == 0:
        label = f"the {category} generator" if category else "the generator"
        return f"no training or validation images for {label}"
    return None


def train_generator(
    config: Mapping[str, Any],
    *,
    space: str,
    category: str,
    train_set: Any,
    val_set: Any,
    out_dir: str | Path,
    on_progress: Callable[[Any], None] | None = None,
    resume: bool = True,
    device: str = "auto",
    num_workers: int = 0,
):
    """Train (or resume) the generator of ``category`` ("" for a baseline) into ``out_dir``
    (:func:`~colourmodels.training.train_pix2pix`, exact resume); its result."""
    from colourmodels.training import train_pix2pix

    if problem := data_problem(category, train_set, val_set):
        raise ValueError(problem)
    p2p = pix2pix_config(
        config, space=space, category=category, device=device, num_workers=num_workers
    )
    return train_pix2pix(p2p, train_set, val_set, out_dir, on_progress=on_progress, resume=resume)


def train_router(
    config: Mapping[str, Any],
    categories: Sequence[str],
    *,
    train_set: Any,
    val_set: Any,
    out_dir: str | Path,
    on_progress: Callable[[Any], None] | None = None,
    resume: bool = True,
    device: str = "auto",
    num_workers: int = 0,
):
    """Train (or resume) an ensemble's ResNet34 classifier into ``out_dir``
    (:func:`~colourmodels.training.train_classifier`, exact resume); its result."""
    from colourmodels.training import train_classifier

    clf = classifier_config(config, categories, device=device, num_workers=num_workers)
    return train_classifier(
        clf, train_set, val_set, out_dir, on_progress=on_progress, resume=resume
    )


@dataclass
class GeneratorJob:
    """One generator of an ensemble to train: its category, data and folder."""

    category: str
    train_set: Any
    val_set: Any
    out_dir: Path
    on_progress: Callable[[Any], None] | None = None
    #: Called as this generator's training ends: ``(result, None)`` or ``(None, error)``
    #: (then raised too). Together: in the generator's own thread, and ``(None, None)`` for
    #: one that another generator's failure stopped (see
    #: :class:`~colourmodels.training.stacked.StackJob`); one after another, the generators
    #: after a failure are not started and get no call.
    on_end: Callable[[Any, BaseException | None], None] | None = None


def train_generators(
    config: Mapping[str, Any],
    jobs: Sequence[GeneratorJob],
    *,
    space: str,
    resume: bool = True,
    device: str = "auto",
    num_workers: int = 0,
    together: bool = False,
    on_done: Callable[[GeneratorJob, Any], None] | None = None,
) -> dict[str, Any]:
    """Train an ensemble's generators: the one place where they are trained. One after
    another by default, each exactly as :func:`train_generator` alone; ``together``: stepped
    together in this process on one device
    (:func:`~colourmodels.training.stacked.train_pix2pix_stack`: on the CPU each result is
    bit for bit the lone run's; not under torchrun). Each generator resumes from its own
    folder, so an interrupted call continues where it stopped. ``on_done(job, result)``
    after each generator (together: after all of them, in the jobs' order). Returns
    category -> result."""
    for job in jobs:
        if problem := data_problem(job.category, job.train_set, job.val_set):
            raise ValueError(problem)
    if together and len(jobs) > 1:
        from colourmodels.training.stacked import StackJob, train_pix2pix_stack

        stack = [
            StackJob(
                config=pix2pix_config(
                    config,
                    space=space,
                    category=job.category,
                    device=device,
                    # The loader workers are shared out: each lane starts its own.
                    num_workers=num_workers // len(jobs),
                ),
                train_set=job.train_set,
                val_set=job.val_set,
                out_dir=job.out_dir,
                on_progress=job.on_progress,
                name=job.category,
                on_end=job.on_end,
            )
            for job in jobs
        ]
        outcome = train_pix2pix_stack(stack, resume=resume)
        results = {job.category: result for job, result in zip(jobs, outcome, strict=True)}
        if on_done is not None:
            for job in jobs:
                on_done(job, results[job.category])
        return results
    results = {}
    for job in jobs:
        try:
            results[job.category] = train_generator(
                config,
                space=space,
                category=job.category,
                train_set=job.train_set,
                val_set=job.val_set,
                out_dir=job.out_dir,
                on_progress=job.on_progress,
                resume=resume,
                device=device,
                num_workers=num_workers,
            )
        except BaseException as exc:
            if job.on_end is not None:
                job.on_end(None, exc)
            raise
        if job.on_end is not None:
            job.on_end(results[job.category], None)
        if on_done is not None:
            on_done(job, results[job.category])
    return results


# --------------------------------------------------------------------------------------
# routing
# --------------------------------------------------------------------------------------


@dataclass
class Routed:
    """A routed batch: ``chroma`` (N, 2, H, W), the predicted chroma; ``chosen``, each
    image's generator index (for "soft" the most probable one; -1 for a baseline's);
    ``predicted``, the classifier's most probable index (None for a baseline); ``probs``
    (N, C) the classifier's probabilities; ``oracle``, the chroma of each image's
    true-category generator (None without a classifier). ``rgb``, ``metrics`` and
    ``categories`` are filled in by an evaluation."""

    chroma: torch.Tensor
    chosen: list[int]
    predicted: list[int] | None = None
    probs: torch.Tensor | None = None
    oracle: torch.Tensor | None = None
    rgb: torch.Tensor | None = None
    metrics: list[dict] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def run_members(
    luma: torch.Tensor, generators: Sequence[nn.Module], classifier: nn.Module | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every generator's chroma (C, N, 2, H, W) and the classifier's probabilities (N, C),
    or None without a classifier; the networks are used as they are (in eval mode)."""
    import torch

    probs = None
    if classifier is not None:
        probs = torch.softmax(classifier(luma).float(), dim=1)
    outputs = torch.stack([generator(luma) for generator in generators])
    return outputs, probs


def route_outputs(
    outputs: torch.Tensor,
    probs: torch.Tensor | None,
    routing: str,
    true_index: torch.Tensor | Sequence[int] | None = None,
) -> Routed:
    """Route a batch whose generators' outputs and classifier probabilities are known (see
    :func:`run_members`). A baseline (``probs`` None, one generator) gets its one output.
    "oracle" needs ``true_index`` (each image's category index, >= 0)."""
    import torch

    n = outputs.shape[1]
    if probs is None:
        return Routed(chroma=outputs[0], chosen=[-1] * n)
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {ROUTINGS}, got {routing!r}")
    device = outputs.device
    index = torch.arange(n, device=device)
    predicted = probs.argmax(dim=1)
    oracle = None
    if true_index is not None:
        truth = torch.as_tensor(true_index, device=device).reshape(-1).long()
        oracle = outputs[truth.clamp(min=0), index]
    if routing == "oracle":
        if true_index is None or bool((truth < 0).any()):
            raise ValueError("oracle routing needs each image's true category")
        chroma, chosen = oracle, truth.tolist()
    elif routing == "soft":
        chroma = torch.einsum("cn,cnkhw->nkhw", probs.T.to(outputs.dtype), outputs)
        chosen = predicted.tolist()
    else:
        chroma, chosen = outputs[predicted, index], predicted.tolist()
    return Routed(chroma, chosen, predicted.tolist(), probs, oracle)


def route(
    luma: torch.Tensor,
    *,
    generators: Sequence[nn.Module],
    classifier: nn.Module | None,
    routing: str = "predicted",
    true_index: torch.Tensor | Sequence[int] | None = None,
) -> Routed:
    """Colourise a batch of luminance (N, 1, H, W) with an ensemble (``generators`` in the
    classifier's class order) routed by ``routing``, or with a baseline's one generator
    (``classifier`` None)."""
    outputs, probs = run_members(luma, generators, classifier)
    return route_outputs(outputs, probs, routing, true_index)

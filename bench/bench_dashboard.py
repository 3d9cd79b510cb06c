"""The analysis dashboard's time with its mixed models: a study of 2 conditions between
subjects × 60 participants each × 24 judgements (12 real photographs and 12 AI images from
100 scenes, answers drawn from a signal-detection model with participant and image
variation), built in a database of its own (``bench_dashboard``, dropped at the end unless
``--keep``), the page requested by a logged-in researcher through Django's test client:

* cold: the cache emptied of this study's models, so the page fits them (every per-condition
  logistic and probit model, the joint model and its contrasts);
* warm: the same judgements again, the models from the cache;
* the per-image page and its CSV (warm), and ``tables.json`` (warm).

Prints each time with the machine's load average (other work slows every figure).

    python bench/bench_dashboard.py [--participants 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_analysis  # noqa: E402

SCENES = 100
STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"


def build(owner, participants: int):
    """The study (see the module docstring), every participant finished."""
    import numpy as np
    from django.utils import timezone
    from scipy import stats

    from survey.analysis.counts import tallies_store
    from survey.models import Condition, Participant, Stimulus, Study, Trial
    from worker.models import Dataset, DatasetImage, ModelRun

    rng = np.random.default_rng(1)
    now = timezone.now()
    dataset = Dataset.objects.create(name="bench", source=Dataset.Source.SYNTHETIC)
    scenes = DatasetImage.objects.bulk_create(
        DatasetImage(
            dataset=dataset,
            file=f"datasets/bench/{i}.png",
            original_name=f"scene-{i:03d}.png",
            split=DatasetImage.Split.TEST,
            width=256,
            height=256,
        )
        for i in range(SCENES)
    )
    study = Study.objects.create(
        name="bench: dashboard", status=Study.Status.OPEN, attention_checks=0, owner=owner
    )
    for k, (label, kind, space, l1, ssim) in enumerate(bench_analysis.CONDITIONS[:2]):
        run = ModelRun.objects.create(
            name=label,
            kind=kind,
            colour_space=space,
            dataset=dataset,
            status=ModelRun.Status.DONE,
            metrics={"test": {"l1": l1, "ssim": ssim, "n": SCENES}},
        )
        condition = Condition.objects.create(study=study, run=run, label=label)
        stimuli = {}
        for is_real in (True, False):
            created = Stimulus.objects.bulk_create(
                Stimulus(
                    study=study,
                    condition=condition,
                    scene=scene,
                    is_real=is_real,
                    file=f"stimuli/{condition.pk}-{int(is_real)}-{scene.pk}.jpg",
                    width=256,
                    height=256,
                )
                for scene in scenes
            )
            stimuli[is_real] = [(s, rng.normal(0.0, 0.5)) for s in created]
        people = Participant.objects.bulk_create(
            Participant(
                study=study,
                condition=condition,
                public_id=f"bench-{k}-{p}",
                completed_at=now,
                last_active_at=now,
            )
            for p in range(participants)
        )
        trials = []
        for person in people:
            c, d = rng.normal(0.0, 0.3), 0.2 + 0.1 * k + rng.normal(0.0, 0.3)
            picks = [
                (is_real, stimuli[is_real][j])
                for is_real in (True, False)
                for j in rng.choice(SCENES, 12, replace=False)
            ]
            for position, i in enumerate(rng.permutation(24), start=1):
                is_real, (stimulus, image) = picks[i]
                eta = c + (0.5 if is_real else -0.5) * d + image
                said_real = rng.random() < stats.norm.cdf(eta)
                trials.append(
                    Trial(
                        participant=person,
                        position=position,
                        stimulus=stimulus,
                        kind="main",
                        answer="real" if said_real else "ai",
                        rt_ms=int(500 + rng.exponential(1500)),
                        answered_at=now,
                    )
                )
        Trial.objects.bulk_create(trials)
    tallies_store(participant_ids=study.participants.values("pk"))
    return study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=60, help="per condition")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432/")
    parser.add_argument("--database", default="bench_dashboard")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    bench_analysis.recreate_database(args.server, args.database)
    os.environ["DATABASE_URL"] = f"{args.server}{args.database}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "studyplatform.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret-" + "x" * 40)
    os.environ["CELERY_KEY_PREFIX"] = "bench-dashboard:"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    from studyplatform.researchers import researcher_create
    from survey.analysis import exports
    from survey.analysis.mixed import analysis_mixed_models, cache_key
    from survey.analysis.results import study_analysis
    from survey.models import Trial

    try:
        call_command("migrate", verbosity=0)
        owner = researcher_create(username="bench", password="a-long-Passphrase-1")
        study = build(owner, args.participants)
        counted = Trial.objects.filter(
            participant__study=study,
            kind="main",
            answer__isnull=False,
            participant__completed_at__isnull=False,
            participant__withdrawn_at__isnull=True,
        ).count()
        print(
            f"study {study.pk}: 2 conditions, {study.participants.count()} participants, "
            f"about {counted} counted judgements; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        client = Client()
        client.force_login(owner)
        # Static files as in development: the production manifest needs collectstatic.
        plain = {**settings.STORAGES, "staticfiles": {"BACKEND": STATIC}}
        override_settings(STORAGES=plain).enable()

        def get(name: str) -> float:
            start = time.perf_counter()
            response = client.get(reverse(name, args=[study.pk]))
            assert response.status_code == 200, (name, response.status_code)
            return time.perf_counter() - start

        def forget() -> None:  # this study's models only: the cache may be shared
            rows = exports.inference_rows(study=study)
            cache.delete(cache_key(study.pk, rows, study.equivalence_margin, study.alpha, 0.95))

        cold = []
        for _ in range(args.repeat):
            forget()
            cold.append(get("study_analysis"))
        warm = [get("study_analysis") for _ in range(args.repeat)]
        print(f"dashboard, models fitted (cold cache): best {min(cold):.2f} s of {len(cold)}")
        print(f"dashboard, models from the cache:      best {min(warm):.3f} s of {len(warm)}")
        analysis = study_analysis(study=study)
        parts = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            study_analysis(study=study)
            middle = time.perf_counter()
            analysis_mixed_models(study=study, analysis=analysis)
            parts.append((middle - start, time.perf_counter() - middle))
        print(
            f"of which the pooled analysis (study_analysis) best {min(p[0] for p in parts):.3f} s, "
            f"the models from the cache (read the judgements, hash, get) best "
            f"{min(p[1] for p in parts):.3f} s"
        )
        forget()
        start = time.perf_counter()
        fitted = analysis_mixed_models(study=study, analysis=analysis)
        print(
            f"the models alone, fitted: {time.perf_counter() - start:.2f} s "
            f"(converged: {[c.glmm.converged for c in fitted.result.conditions]})"
        )
        for name in ("study_images", "export_images_csv", "export_tables_json"):
            times = [get(name) for _ in range(args.repeat)]
            print(f"{name:38} best {min(times):.3f} s (warm)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        connection.close()
        if not args.keep:
            bench_analysis.recreate_database(args.server, args.database, drop_only=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

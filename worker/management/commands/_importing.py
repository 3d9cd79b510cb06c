"""What the import commands share: a progress bar, the import, and a closing summary."""

from __future__ import annotations

from django.core.management.base import CommandError
from tqdm import tqdm

from worker.services.datasets import SPLITS, DatasetImportError, dataset_import
from worker.services.sources import SourceScan


def import_scan(
    command,
    scan: SourceScan,
    *,
    name: str,
    source: str,
    seed: int,
    drop_grayscale=True,
    owner=None,
):
    bar = tqdm(total=len(scan.images), unit="img", desc="importing", disable=None)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        report = dataset_import(
            name=name,
            source=source,
            images=scan.images,
            seed=seed,
            drop_grayscale=drop_grayscale,
            skipped=scan.skipped,
            summary=scan.summary,
            categories=scan.categories,
            progress=progress,
            created_by=owner,
        )
    except DatasetImportError as exc:
        raise CommandError(str(exc)) from None
    finally:
        bar.close()
    write_summary(command, report)
    return report


def write_summary(command, report) -> None:
    dataset = report.dataset
    out = command.stdout
    out.write(command.style.SUCCESS(f"data set {dataset.name!r} (id {dataset.pk}) imported"))
    out.write(f"  imported: {report.imported}")
    if report.skipped:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.skip_reasons().items()))
        out.write(f"  skipped: {len(report.skipped)} ({reasons})")
        for name, reason in report.skipped[:10]:
            out.write(f"    {name}: {reason}")
        if len(report.skipped) > 10:
            out.write(f"    … and {len(report.skipped) - 10} more")
    if "grayscale_removed" in dataset.summary:
        out.write(f"  grayscale removed by the reader: {dataset.summary['grayscale_removed']}")
    out.write(f"  {'category':<12}" + "".join(f"{s:>8}" for s in SPLITS) + f"{'total':>8}")
    for category, per_split in dataset.counts.items():
        row = "".join(f"{per_split[s]:>8}" for s in SPLITS)
        out.write(f"  {category or '(none)':<12}{row}{sum(per_split.values()):>8}")

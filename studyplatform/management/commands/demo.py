import time

from django.core.management.base import BaseCommand, CommandError

from studyplatform.demo import PRESETS, STUDY, Stage, demo_advance
from studyplatform.researchers import add_owner_argument, owner_from_option


class Command(BaseCommand):
    help = (
        "Set up the demo, step by step: the data set 'demo-synthetic', the runs "
        "'demo-baseline' and 'demo-ensemble' (trained by the Celery workers) and the study "
        "'Demo study' made from them, opened once both runs are done. Each step is done once; "
        "run it again to carry on (the run command does this by itself)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--wait", action="store_true", help="follow until the study is open")
        parser.add_argument(
            "--size",
            choices=sorted(PRESETS),
            default="full",
            help="full: minutes on two CPU cores; tiny: seconds (for smoke tests)",
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="where the site is served"
        )
        parser.add_argument(
            "--timeout", type=float, default=3600, help="with --wait: give up after this (s)"
        )
        add_owner_argument(parser, default="the account 'researcher', if there is one")

    def handle(self, *args, wait, size, base_url, timeout, owner, **options):
        owner = owner_from_option(owner)  # default: the account 'researcher'
        deadline = time.monotonic() + timeout
        state = demo_advance(config=PRESETS[size], retry=True, user=owner)
        link = f"{base_url.rstrip('/')}/s/{state.study.slug}/"
        if wait and not state.finished:
            self._warn_without_worker()
        told_link, last = False, None
        while True:
            for line in state.done:
                self.stdout.write(line)
            if state.stage == Stage.OPEN:
                self.stdout.write(self.style.SUCCESS(f"{STUDY!r} is open to participants: {link}"))
                return
            if not told_link:
                self.stdout.write(f"participants' link of {STUDY!r}: {link}")
                told_link = True
            if state.detail != last:
                self.stdout.write(state.detail)
                last = state.detail
            if state.stage == Stage.FAILED:
                raise CommandError(state.detail)
            if state.finished:
                return
            if not wait:
                self.stdout.write(
                    "run this again (or with --wait) to open it once the runs are done"
                )
                return
            if time.monotonic() > deadline:
                raise CommandError(f"the demo is still at: {state.detail} (after {timeout:.0f} s)")
            time.sleep(2)
            state = demo_advance(config=PRESETS[size], user=owner)

    def _warn_without_worker(self) -> None:
        from studyplatform.celery import app

        if not app.control.ping(timeout=1.0):
            self.stdout.write(
                self.style.WARNING(
                    "no Celery worker answers (yet): the runs train once one runs "
                    "(the run command starts one)"
                )
            )

import os
import secrets
import signal
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from studyplatform.launcher import (
    ProcessGroup,
    exposure_warning,
    requeue_lost_work,
    start_redis,
    start_web,
    start_worker,
)
from studyplatform.researchers import researcher_create

#: PLATFORM_DEMO's values: which demo to set up (see studyplatform/demo.py), or none.
DEMO_VALUES = {
    "1": "full",
    "true": "full",
    "yes": "full",
    "on": "full",
    "full": "full",
    "tiny": "tiny",
    "0": "off",
    "false": "off",
    "no": "off",
    "off": "off",
}


def demo_from_environment() -> str:
    raw = os.environ.get("PLATFORM_DEMO", "1").strip().lower() or "1"
    if raw not in DEMO_VALUES:
        raise CommandError(f"PLATFORM_DEMO: expected 1, 0 or tiny, got {raw!r}")
    return DEMO_VALUES[raw]


class Command(BaseCommand):
    help = (
        "Migrate, then run Redis (if none is running), a Celery worker and the web server, "
        "and set up the demo (a data set, two small runs and a study made from them)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
        parser.add_argument(
            "--demo",
            choices=["full", "tiny", "off"],
            help="the demo to set up (default: PLATFORM_DEMO, else full; tiny takes seconds)",
        )
        parser.add_argument(
            "--no-demo", dest="demo", action="store_const", const="off", help="no demo"
        )

    def handle(self, *args, host, port, concurrency, demo, **options):
        demo = demo or demo_from_environment()
        var_dir = settings.VAR_DIR
        logs = var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        login = self._ensure_researcher(var_dir)
        base_url = f"http://{host}:{port}"

        group = ProcessGroup()
        watcher = None
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            self.stdout.write(start_redis(group, settings.CELERY_BROKER_URL, var_dir))
            broker_is_new = any(name == "redis" for name, _ in group.children)
            requeued = requeue_lost_work(broker_is_new=broker_is_new)
            if requeued:
                self.stdout.write(f"queued again what the last start left: {'; '.join(requeued)}")
            start_worker(
                group, concurrency=concurrency, log_path=logs / "worker.log", var_dir=var_dir
            )
            start_web(group, host=host, port=port, log_path=logs / "web.log")
            self.stdout.write(
                self.style.SUCCESS(f"\nThe platform is running: open {base_url}/\n")
                + f"  log in as {login}\n"
                + f"  model runs and their training progress: {base_url}/runs/\n"
                + f"  logs in {logs}; press Ctrl-C to stop\n"
            )
            warning = exposure_warning(host, debug=settings.DEBUG)
            if warning:
                self.stdout.write(self.style.WARNING(warning))
            if demo != "off":
                watcher = self._start_demo(demo, base_url)
            while not stopping:
                exited = group.first_exited()
                if exited:
                    name, code = exited
                    raise CommandError(f"the {name} exited with status {code}; see {logs}")
                time.sleep(0.5)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        finally:
            self.stdout.write("stopping…")
            if watcher is not None:
                watcher.stop()
                watcher.join(timeout=10)
            group.stop()

    def _start_demo(self, demo: str, base_url: str):
        from studyplatform.demo import PRESETS, DemoWatcher

        self.stdout.write(
            "demo: a synthetic data set, two small runs and a study made from them, each made "
            "once (--no-demo or PLATFORM_DEMO=0 skips the demo)"
        )
        watcher = DemoWatcher(
            say=lambda line: self.stdout.write(line), base_url=base_url, config=PRESETS[demo]
        )
        watcher.start()
        return watcher

    def _ensure_researcher(self, var_dir) -> str:
        password_file = var_dir / "researcher_password"
        if not get_user_model().objects.filter(username="researcher").exists():
            password = secrets.token_urlsafe(12)
            researcher_create(username="researcher", password=password, staff=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            password = password_file.read_text().strip()
            return f"'researcher', password {password} (kept in {password_file})"
        return "'researcher' (its password was changed by hand)"

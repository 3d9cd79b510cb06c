import secrets
import signal
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from studyplatform.launcher import ProcessGroup, start_redis, start_web, start_worker
from studyplatform.researchers import researcher_create


class Command(BaseCommand):
    help = "Migrate, then run Redis (if none is running), a Celery worker and the web server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")

    def handle(self, *args, host, port, concurrency, **options):
        var_dir = settings.VAR_DIR
        logs = var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        login = self._ensure_researcher(var_dir)

        group = ProcessGroup()
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            self.stdout.write(start_redis(group, settings.CELERY_BROKER_URL, var_dir))
            start_worker(
                group, concurrency=concurrency, log_path=logs / "worker.log", var_dir=var_dir
            )
            start_web(group, host=host, port=port, log_path=logs / "web.log")
            self.stdout.write(
                self.style.SUCCESS(f"\nThe platform is running: open http://{host}:{port}/\n")
                + f"  log in as {login}\n"
                + f"  logs in {logs}; press Ctrl-C to stop\n"
            )
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
            group.stop()

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

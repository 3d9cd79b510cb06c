import os
import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from studyplatform.researchers import researcher_create


class Command(BaseCommand):
    help = (
        "Create a researcher account. The password comes from --password, else the "
        "RESEARCHER_PASSWORD variable, else one is generated and printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password")
        parser.add_argument("--staff", action="store_true", help="may also use /admin/")
        parser.add_argument(
            "--update", action="store_true", help="reset the password if the user exists"
        )

    def handle(self, *args, username, email, password, staff, update, **options):
        password = password or os.environ.get("RESEARCHER_PASSWORD")
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(12)
        try:
            researcher_create(
                username=username, password=password, email=email, staff=staff, update=update
            )
        except (ValueError, ValidationError) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError("; ".join(messages)) from None
        self.stdout.write(self.style.SUCCESS(f"researcher {username!r} ready"))
        if generated:
            self.stdout.write(f"password: {password}")

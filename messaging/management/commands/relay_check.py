"""`python manage.py relay_check`: check Redis, NATS (JetStream), PocketBase and the settings."""
import asyncio

from django.core.management.base import BaseCommand, CommandError

from messaging.ops.checks import run_all

MARK = {"ok": "ok     ", "warning": "WARNING", "error": "ERROR  "}


class Command(BaseCommand):
    help = "Check that Redis, NATS (JetStream stream and consumer), PocketBase and the settings are right; exits 1 on errors."

    def handle(self, *args, **options):
        findings = asyncio.run(run_all())
        for f in findings:
            line = f"{MARK[f.level]} {f.component}: {f.message}"
            style = {"ok": self.style.SUCCESS, "warning": self.style.WARNING, "error": self.style.ERROR}[f.level]
            self.stdout.write(style(line))
        errors = sum(f.level == "error" for f in findings)
        if errors:
            raise CommandError(f"{errors} problem{'s' if errors != 1 else ''} found.")
        self.stdout.write("No problems found.")

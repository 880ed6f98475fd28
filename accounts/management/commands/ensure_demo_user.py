"""Create (or reset) the local demo account that `make run` tells you to sign in with."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_EMAIL = "demo@ai4joy.local"
DEMO_PASSWORD = "yes-and-demo"


class Command(BaseCommand):
    help = "Create the local demo user (staff, so it can open /admin). Refused in production."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("ensure_demo_user is for local use only (AI4JOY_ENV=production).")
        users = get_user_model()
        user, created = users.objects.get_or_create(
            username=DEMO_EMAIL, defaults={"email": DEMO_EMAIL, "first_name": "Demo"}
        )
        user.email = DEMO_EMAIL
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            f"{verb} the demo account. Sign in at http://127.0.0.1:8000/accounts/login/ with\n"
            f"  email:    {DEMO_EMAIL}\n  password: {DEMO_PASSWORD}\n"
            "or create your own account at http://127.0.0.1:8000/accounts/signup/ ."
        )

"""allauth adapter: email + password accounts only where the deployment allows them."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.ACCOUNT_EMAIL_LOGIN)

    def pre_login(self, request: HttpRequest, user, **kwargs):  # type: ignore[no-untyped-def]
        # Social logins carry a sociallogin; a password login does not. With email
        # login switched off only Google may sign people in.
        if not settings.ACCOUNT_EMAIL_LOGIN and not kwargs.get("sociallogin"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("Email sign-in is disabled; use Google.")
        return super().pre_login(request, user, **kwargs)

from django.conf import settings
from django.http import HttpRequest


def sign_in_options(request: HttpRequest) -> dict[str, bool]:
    """Which sign-in methods the pages offer, so no button leads nowhere."""
    return {
        "google_sign_in": bool(settings.GOOGLE_OAUTH_CLIENT_ID),
        "email_sign_in": bool(settings.ACCOUNT_EMAIL_LOGIN),
    }

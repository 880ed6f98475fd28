"""ASGI entry point: HTTP to Django, WebSockets (audio role) to the voice consumer.

WebSockets pass the Origin check against ALLOWED_HOSTS and the session-cookie
authentication before any consumer code runs; a path no route knows gets a clean 4004
(ai4joy/ws.py), never a 500.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ai4joy.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from ai4joy.ws import with_fallback  # noqa: E402

websocket_routes = []
if settings.SERVICE_ROLE in {"audio", "all"}:
    from audio.routing import websocket_urlpatterns

    websocket_routes = websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(with_fallback(websocket_routes)))
        ),
    }
)

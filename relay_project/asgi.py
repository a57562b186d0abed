"""ASGI entry point: HTTP through Django, `/ws/` through Channels with Origin checks and
PocketBase authentication (served by daphne through `python -m relay_project.serve`)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from auth_pocketbase.middleware import PocketBaseAuthMiddlewareStack  # noqa: E402
from messaging.routing import websocket_urlpatterns  # noqa: E402
from relay_project.origin import AllowedHostsOrNoOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOrNoOriginValidator(PocketBaseAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

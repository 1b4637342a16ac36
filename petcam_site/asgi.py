"""ASGI entry point: HTTP through Django, WebSocket through Channels routing."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "petcam_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from petcam_site.websocket_origin import BrowserOriginValidator  # noqa: E402
from petcam_site.websocket_urls import websocket_urlpatterns  # noqa: E402


class StartsEmbeddedWorker:
    """Starts the in-process media worker on the server's loop at the first event.

    `manage.py serve` starts it as soon as daphne listens; this covers plain
    `daphne petcam_site.asgi:application` in the embedded mode.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.embedded = settings.PETCAM_WORKER_MODE == "inprocess"

    async def __call__(self, scope, receive, send):
        if self.embedded:
            # Imported here: in production the web process never loads the worker (aiortc).
            from streaming.worker.media_worker import start_inprocess_worker

            start_inprocess_worker()
        return await self.app(scope, receive, send)


application = StartsEmbeddedWorker(ProtocolTypeRouter({
    # Django's own static handler (the portal's and the admin's CSS and JS): no collectstatic, no
    # separate web server needed for a one-box install; only /static/ paths reach it.
    "http": ASGIStaticFilesHandler(django_asgi_app),
    "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
}))

"""ASGI entry point: HTTP through Django, WebSocket through Channels routing."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "petcam_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from petcam_site.access_log import AccessLog  # noqa: E402
from petcam_site.proxy_headers import TrustedProxyHeaders  # noqa: E402
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


class BrowserOriginValidator:
    """Checks Origin where a browser sends one (cross-site socket hijacking).

    Apps and scripts send no Origin and authenticate with a token, so they pass.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.validated = AllowedHostsOriginValidator(app)

    async def __call__(self, scope, receive, send):
        has_origin = any(name == b"origin" for name, _ in scope.get("headers", []))
        return await (self.validated if has_origin else self.app)(scope, receive, send)


application = StartsEmbeddedWorker(ProtocolTypeRouter({
    # Django's own static handler (the portal's and the admin's CSS and JS): no collectstatic, no
    # separate web server needed for a one-box install; only /static/ paths reach it.
    "http": ASGIStaticFilesHandler(django_asgi_app),
    "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
}))
# Outermost: who the client is (trusted proxies only), then the access log that names it.
if settings.PETCAM_ACCESS_LOG:
    application = AccessLog(application)
application = TrustedProxyHeaders(application, settings.PETCAM_TRUSTED_PROXIES)

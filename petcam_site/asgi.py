"""ASGI entry point: HTTP through Django, WebSocket through Channels routing.

Around Django: request-body limits (petcam_site/body_limits.py; inside daphne's parser
too, petcam_site/daphne_compat.py) and the static files of a one-box install.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "petcam_site.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.exceptions import SuspiciousOperation  # noqa: E402
from django.http import Http404  # noqa: E402

from petcam_site import daphne_compat  # noqa: E402
from petcam_site.access_log import AccessLog  # noqa: E402
from petcam_site.body_limits import BodySizeLimit  # noqa: E402
from petcam_site.proxy_headers import TrustedProxyHeaders  # noqa: E402
from petcam_site.websocket_origin import BrowserOriginValidator  # noqa: E402
from petcam_site.websocket_urls import websocket_urlpatterns  # noqa: E402

# Before daphne builds its first request: bodies over a route's limit are refused as
# they arrive, not after daphne has queued all of them for the app.
daphne_compat.install()


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


class StaticFiles(ASGIStaticFilesHandler):
    """Django's static handler. It catches only Http404, so a path that leaves the static
    folders (/static/../../etc/passwd) escaped as SuspiciousFileOperation, a 500; it is
    now the JSON 404 of any unknown file."""

    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousOperation:
            raise Http404("No such file.") from None


application = StartsEmbeddedWorker(ProtocolTypeRouter({
    # Django's own static handler (the portal's and the admin's CSS and JS): no collectstatic, no
    # separate web server needed for a one-box install; only /static/ paths reach it.
    # Outermost: a body over its route's limit never reaches Django (413).
    "http": BodySizeLimit(StaticFiles(django_asgi_app)),
    "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
}))
# Outermost: who the client is (trusted proxies only), then the access log that names it.
if settings.PETCAM_ACCESS_LOG:
    application = AccessLog(application)
application = TrustedProxyHeaders(application, settings.PETCAM_TRUSTED_PROXIES)
# Outermost, where daphne's own `send` arrives: how far behind each socket is.
application = daphne_compat.WriteBacklog(application)

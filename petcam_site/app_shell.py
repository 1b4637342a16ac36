"""The installable app shell: the web app manifest and the service worker.

The portal installs to a phone's home screen from /manifest.webmanifest (name, icons,
start_url, display standalone). /sw.js is served from the root so its scope covers the
whole site; it caches only the shell (files under STATIC_URL: CSS, JS, icons) and lets
everything else (pages, the API, recordings, video, WebSockets) go to the network as if it
were not there (petcam_site/static/petcam/sw.js). Both are public, like the static files:
they hold nothing about any user.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse, JsonResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET

WORKER_SOURCE = Path(__file__).resolve().parent / "static" / "petcam" / "sw.js"
# Fetched while the worker installs: what every page needs. Other static files are
# cached the first time a page uses them.
PRECACHE = ("petcam/base.css", "petcam/csrf.js", "petcam/app_shell.js", "petcam/favicon.svg",
            "petcam/apple-touch-icon.png", "petcam/icon-192.png", "petcam/icon-512.png")
THEME = "#1b2026"  # base.css --panel: the header's colour


@require_GET
def manifest(request):
    return JsonResponse({
        "id": "/",
        "name": "petcam",
        "short_name": "petcam",
        "description": "Watch your pet live, and its recordings.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#111418",  # base.css --bg
        "theme_color": THEME,
        "icons": [
            {"src": static("petcam/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("petcam/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {"src": static("petcam/favicon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    }, content_type="application/manifest+json")


def _static_files_tag() -> str:
    """Changes whenever a static file or the worker changes: a new deploy gets a new cache
    (static names carry no hash here, so the old cache must go)."""
    digest = hashlib.sha256(WORKER_SOURCE.read_bytes())
    for finder in finders.get_finders():
        for path, storage in sorted(finder.list([]), key=lambda item: item[0]):
            stat = Path(storage.path(path)).stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


_cached_tag = functools.cache(_static_files_tag)


@require_GET
def service_worker(request):
    """The worker's source with its configuration in front (no inline script anywhere)."""
    config = {"version": _static_files_tag() if settings.DEBUG else _cached_tag(),
              "staticPrefix": static(""), "precache": [static(p) for p in PRECACHE]}
    body = f"self.PETCAM_SHELL = {json.dumps(config)};\n" + WORKER_SOURCE.read_text()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"  # browsers look for a new worker on each visit
    response["Service-Worker-Allowed"] = "/"
    return response

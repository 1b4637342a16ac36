"""Content-Security-Policy on every response: the portal runs only its own files.

Pages keep their JavaScript and CSS in static files (ES modules, no inline code, no
style="" attributes; data through data- attributes or json_script), so the policy can
refuse everything inline: an injected <script> or onclick= never runs.
frame-ancestors 'none' is the modern twin of X-Frame-Options: DENY (which Django's
middleware also sends): no other site may frame the portal (clickjacking the Record
or Delete buttons). tests/test_browser_csp.py loads every page under it in Chromium.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "Content-Security-Policy"
POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    # Django 5.2's admin and our pages need no inline style; scripts still set
    # element.style (CSSOM), which style-src does not govern.
    "style-src 'self'",
    # data: for images inlined in CSS; blob: for pictures and videos made in the page.
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    # CSP3: 'self' also matches ws:/wss: of the page's own host and port (the detection
    # socket, /ws/...): Chromium >= 71, Firefox, Safari >= 16 (older Safari: no boxes).
    "connect-src 'self'",
    # The service worker (/sw.js) and the web app manifest: this site's own only.
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


class ContentSecurityPolicyMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return self._add(self.get_response(request))

    async def _acall(self, request):
        return self._add(await self.get_response(request))

    @staticmethod
    def _add(response):
        if HEADER not in response:  # a view that sets its own policy keeps it
            response[HEADER] = POLICY
        return response

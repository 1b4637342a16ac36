"""Content-Security-Policy: frame-ancestors 'none' on every response.

The modern twin of X-Frame-Options: DENY (which Django's middleware also sends):
no other site may frame the portal (clickjacking the Record or Delete buttons).
Only frame-ancestors: the pages' inline scripts would need nonces for a full policy.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "Content-Security-Policy"
POLICY = "frame-ancestors 'none'"


class FrameAncestorsMiddleware:
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

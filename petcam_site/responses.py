"""Streaming responses that stream under ASGI too.

Django's StreamingHttpResponse (and FileResponse) over ASGI first reads a synchronous
iterator to its end into a list (django/http/response.py, __aiter__), so a "streamed"
month of detections or a recording file sat whole in memory per request. These pull one
part at a time, on the request's sync thread (the iterator may hold a database cursor).
Under WSGI and Django's test client they are the plain classes.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import FileResponse, StreamingHttpResponse

_END = object()


class _PullsPartByPart:
    async def __aiter__(self):
        parts = iter(self.streaming_content)
        pull = sync_to_async(next, thread_sensitive=True)
        while (part := await pull(parts, _END)) is not _END:
            yield part


class IncrementalStreamingResponse(_PullsPartByPart, StreamingHttpResponse):
    """StreamingHttpResponse; give it parts of tens of KB (one thread hop per part)."""


class IncrementalFileResponse(_PullsPartByPart, FileResponse):
    """FileResponse, read in 256 KB blocks."""

    block_size = 256 * 1024

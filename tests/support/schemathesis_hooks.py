"""schemathesis hooks for tests/integration/test_openapi.py: send WHEP offers as
application/sdp text."""

from __future__ import annotations

import schemathesis


@schemathesis.serializer("application/sdp")
def sdp_text(ctx, value) -> bytes:
    # Generated bodies are any text (even lone surrogates): the server must answer 400.
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", errors="surrogatepass")

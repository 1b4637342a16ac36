"""WebSocket routes."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from streaming.consumers import CameraConsumer
from streaming.mse_consumer import MseConsumer

CLOSE_NO_SUCH_PATH = 4404


class UnknownPath(AsyncWebsocketConsumer):
    """Any other path: said in the documented error shape, then closed with 4404.
    Without this route Channels' router raises and the handshake fails with a 500."""

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=json.dumps({
            "type": "error", "error": "not_found",
            "detail": "No WebSocket endpoint here; cameras are at /ws/cameras/<camera>/."}))
        await self.close(code=CLOSE_NO_SUCH_PATH)


websocket_urlpatterns = [
    path("ws/cameras/<slug:camera>/", CameraConsumer.as_asgi()),
    path("ws/cameras/<slug:camera>/mse/", MseConsumer.as_asgi()),
    re_path(r"", UnknownPath.as_asgi()),  # last: everything else
]

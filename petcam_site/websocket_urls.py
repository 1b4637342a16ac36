"""WebSocket routes."""

from django.urls import path

from streaming.consumers import CameraConsumer

websocket_urlpatterns = [
    path("ws/cameras/<slug:camera>/", CameraConsumer.as_asgi()),
]

"""URLs of the playback page and its API (recordings/playback.py, span_views.py)."""

from django.urls import path

from . import playback, span_views

urlpatterns = [
    path("recordings/<int:pk>/", playback.playback_page, name="recording-playback"),
    path("api/recordings/<int:pk>/keyframes/", playback.RecordingKeyframes.as_view(),
         name="recording-keyframes"),
    path("api/recordings/<int:pk>/thumbnails/", playback.RecordingThumbnails.as_view(),
         name="recording-thumbnails"),
    path("api/recordings/<int:pk>/thumbnails/sprite.jpg",
         playback.RecordingThumbnailSprite.as_view(), name="recording-thumbnails-sprite"),
    path("api/recordings/<int:pk>/hls/index.m3u8", playback.RecordingHlsPlaylist.as_view(),
         name="recording-hls"),
    path("api/recordings/<int:pk>/hls/link/", playback.RecordingHlsLink.as_view(),
         name="recording-hls-link"),
    path("api/recordings/<int:pk>/hls/media.mp4", playback.RecordingHlsMedia.as_view(),
         name="recording-hls-media"),
    path("api/recordings/<int:pk>/timeline/", playback.RecordingTimeline.as_view(),
         name="recording-timeline"),
    path("api/recordings/<int:pk>/detections/", playback.RecordingDetections.as_view(),
         name="recording-detections"),
    path("api/cameras/<slug:camera>/recording-spans/", span_views.RecordingSpans.as_view(),
         name="recording-spans"),
]

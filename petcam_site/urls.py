"""URL map: the project only wires the apps' views."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView

from detections.views import DetectionHistory
from petcam_site import app_shell, pages
from petcam_site.account import account_page
from petcam_site.api_errors import not_found
from petcam_site.health import health
from petcam_site.metrics import metrics
from petcam_site.token_view import ObtainToken
from recordings import catalog_views
from recordings import pages as recording_pages
from recordings import views as recording_views
from streaming import signaling_views as signaling
from streaming import views as streaming_views

urlpatterns = [
    path("", streaming_views.live_page, name="live"),
    path("recordings/", recording_pages.recordings_page, name="recordings"),
    path("health", health, name="health"),
    # browsers ask for /favicon.ico before (or without) reading <link rel=icon>
    path("favicon.ico", pages.favicon, name="favicon"),
    # the installable app: manifest, and the service worker at the root (its scope: the site)
    path("manifest.webmanifest", app_shell.manifest, name="web-manifest"),
    path("sw.js", app_shell.service_worker, name="service-worker"),
    path("metrics", metrics, name="metrics"),
    # The pages' JS strings in the request's language (locale/*/LC_MESSAGES/djangojs.po).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="login.html",
                                                          redirect_authenticated_user=True),
         name="login"),
    path("accounts/logout/", pages.LogoutView.as_view(), name="logout"),
    path("account/", account_page, name="account"),
    path("account/password/", pages.PasswordChangeView.as_view(), name="password-change"),
    path("api/auth/token/", ObtainToken.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/cameras/", streaming_views.CameraList.as_view(), name="camera-list"),
    path("api/cameras/<slug:camera>/", streaming_views.CameraDetail.as_view(),
         name="camera-detail"),
    path("api/cameras/<slug:camera>/webrtc/offer/", signaling.WebRtcOffer.as_view(),
         name="webrtc-offer"),
    path("api/cameras/<slug:camera>/webrtc/<str:session>/", signaling.WebRtcSession.as_view(),
         name="webrtc-session"),
    path("api/cameras/<slug:camera>/detections/", DetectionHistory.as_view(),
         name="detection-history"),
    path("api/webrtc/offer", signaling.SeedWebRtcOffer.as_view(), name="seed-webrtc-offer"),
    path("api/webrtc/ice-servers/", signaling.IceServers.as_view(), name="webrtc-ice-servers"),
    path("api/cameras/<slug:camera>/recording/", recording_views.RecordingState.as_view(),
         name="recording-state"),
    path("api/cameras/<slug:camera>/recording/start/", recording_views.RecordingStart.as_view(),
         name="recording-start"),
    path("api/cameras/<slug:camera>/recording/stop/", recording_views.RecordingStop.as_view(),
         name="recording-stop"),
    path("api/recording/start", recording_views.SeedRecordingStart.as_view(),
         name="seed-recording-start"),
    path("api/recording/stop", recording_views.SeedRecordingStop.as_view(),
         name="seed-recording-stop"),
    path("api/recording/status", recording_views.SeedRecordingStatus.as_view(),
         name="seed-recording-status"),
    path("api/recordings/", catalog_views.RecordingList.as_view(), name="recording-list"),
    path("api/recordings/<int:pk>/", catalog_views.RecordingDetail.as_view(),
         name="recording-detail"),
    path("api/recordings/<int:pk>/download/", catalog_views.RecordingDownload.as_view(),
         name="recording-download"),
    path("api/recordings/<int:pk>/thumbnail/", catalog_views.RecordingThumbnail.as_view(),
         name="recording-thumbnail"),
    path("whep/<slug:camera>", signaling.WhepEndpoint.as_view(), name="whep"),
    path("whep/<slug:camera>/<str:session>", signaling.WhepSession.as_view(),
         name="whep-session"),
    path("", include("recordings.playback_urls")),  # playback page, keyframes, HLS, timeline
    path("", include("recordings.schedule_urls")),  # recording schedules: page and API
    path("", include("events.urls")),  # events list, rules, their API
    # Anything else under /api/ or /whep/ is a JSON 404, even with DEBUG on.
    re_path(r"^(api|whep)/", not_found),
]

# JSON under /api/ and /whep/, HTML elsewhere
handler404 = "petcam_site.pages.not_found"
handler500 = "petcam_site.pages.server_error"

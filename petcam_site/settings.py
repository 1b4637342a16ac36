"""petcam settings: read from the environment once, here; code asks settings.

Embedded default (no variables set): SQLite, in-memory channel layer, the
media worker inside the ASGI process. DATABASE_URL and REDIS_URL switch to the
production setup (PostgreSQL, Redis channel layer, separate media workers).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from petcam_site import logging_config, proxy_headers, secret_key, sqlite_file
from streaming import ice_servers

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PETCAM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


# --- Secret key and DEBUG (petcam_site/secret_key.py) ---
# DEBUG shows stack traces and keeps every SQL query in memory: off unless asked for.
DEBUG = env_bool("PETCAM_DEBUG", env_bool("DEBUG", env_bool("DJANGO_DEBUG", False)))
# DJANGO_SECRET_KEY, else a random key made on the first start and kept in VAR_DIR/secret_key.
SECRET_KEY = secret_key.load(VAR_DIR)
secret_key.refuse_insecure(SECRET_KEY, DEBUG)
_hosts = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
ALLOWED_HOSTS = [h.strip() for h in _hosts.split(",") if h.strip()]
# Origins other than the site's own (scheme://host:port) that may post forms and open
# WebSockets, e.g. the public URL when a proxy rewrites Host (petcam_site/websocket_origin.py).
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "")
                        .split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",  # request/DB figures on /metrics (petcam_site/metrics.py)
    "rest_framework",
    # Only for the one-time move of old clear-text keys (accounts/migrations/0002): nothing
    # authenticates with DRF's tokens any more; knox's hashed ones replace them.
    "rest_framework.authtoken",
    "knox",
    "axes",
    "drf_spectacular",
    "streaming",
    "recordings",
    "detections",
    "events",
    "accounts",
]

MIDDLEWARE = [
    # First and last: django-prometheus times the whole chain (sync or async views alike).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (Accept-Language); petcam_site/user_locale.py then applies the
    # account page's choice, once the user is known.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The user's language and time zone from the account page (else browser's), per request.
    "petcam_site.user_locale.UserLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "petcam_site.security_headers.ContentSecurityPolicyMiddleware",
    # Refuses login POSTs from an address with too many failures (petcam_site/login_guard).
    "petcam_site.login_guard.address_guard",
    # Last: turns a login locked out by django-axes into petcam_site/login_guard's answer.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "petcam_site.urls"
ASGI_APPLICATION = "petcam_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite by default, DATABASE_URL (PostgreSQL) in production ---
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("PETCAM_SQLITE_PATH", str(VAR_DIR / "petcam.sqlite3")),
            # The web tier and the media worker write at once (logins, tokens, detections):
            # a deferred transaction that upgrades to a write fails at once with "database
            # is locked"; IMMEDIATE takes the write lock up front and waits for it.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
    # Owner-only (0600), made before SQLite would make it 0644 (petcam_site/sqlite_file.py).
    sqlite_file.secure(DATABASES["default"]["NAME"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer: in-memory by default, REDIS_URL in production ---
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's 5 s read timeout equals channels_redis's blocking wait:
                # every idle receive would time out. Give the socket more.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 10}],
                # Several petcam installs (or test runs) can share one Redis.
                "prefix": os.environ.get("PETCAM_CHANNEL_PREFIX", "petcam"),
                # Every socket of one daphne process shares one inbox key ("specific.*"),
                # capacity 100 by default: ten live-over-WebSocket viewers, each with
                # PETCAM_MSE_WINDOW_FRAMES fragments in flight, need more.
                "channel_capacity": {"specific.*": 2000},
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds the per-address login failures (petcam_site/login_guard.py): in Redis
# when there is one, so every daphne process counts together; else in the process.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL,
                          "KEY_PREFIX": os.environ.get("PETCAM_CHANNEL_PREFIX", "petcam")}}

# Checked wherever a password is set by a person (admin, `changepassword`, password change).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("PETCAM_PASSWORD_MIN_LENGTH", 10)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# API tokens (accounts/models.py, django-rest-knox): stored as SHA-512 digests, shown once.
# A new token lives PETCAM_TOKEN_TTL_DAYS (0: until revoked); a user holds at most
# PETCAM_TOKENS_PER_USER live ones.
KNOX_TOKEN_MODEL = "accounts.ApiToken"
PETCAM_TOKEN_TTL_DAYS = float(os.environ.get("PETCAM_TOKEN_TTL_DAYS", "30"))
PETCAM_TOKENS_PER_USER = env_int("PETCAM_TOKENS_PER_USER", 20)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=PETCAM_TOKEN_TTL_DAYS) if PETCAM_TOKEN_TTL_DAYS > 0 else None,
    "AUTO_REFRESH": False,  # an expiry is a promise: use does not extend it
}
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (login page, admin login, POST /api/auth/token/): after
# PETCAM_LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that
# pair is locked out for PETCAM_LOGIN_LOCKOUT_MINUTES (429). A success resets the count.
AXES_FAILURE_LIMIT = env_int("PETCAM_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("PETCAM_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "petcam_site.login_guard.lockout_response"
AXES_VERBOSE = False  # petcam_site/login_guard logs lockouts in one line
# And per address, whatever the usernames (petcam_site/login_guard.py): this many failed
# logins from one address within the lockout time refuse its logins until they age out.
PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT", 20)

# --- Security headers and cookies ---
# Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed
# (petcam_site/proxy_headers.py): addresses or networks, comma-separated, e.g.
# "127.0.0.1,::1". Empty: none, the connection's address is the client's. Run daphne
# without --proxy-headers. deploy/caddy/ is the tested proxy (docs/operations.md).
PETCAM_TRUSTED_PROXIES = [p.strip() for p in
                          os.environ.get("PETCAM_TRUSTED_PROXIES", "").split(",") if p.strip()]
try:
    proxy_headers.parse_networks(PETCAM_TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
# Behind TLS (PETCAM_TLS=1): cookies only over HTTPS, and HSTS.
PETCAM_TLS = env_bool("PETCAM_TLS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PETCAM_TLS
SECURE_HSTS_SECONDS = env_int("PETCAM_HSTS_SECONDS", 31_536_000 if PETCAM_TLS else 0)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured(f"PETCAM_HSTS_SECONDS must be 0 or more, got {SECURE_HSTS_SECONDS}")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PETCAM_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("PETCAM_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("PETCAM_SSL_REDIRECT", False)
# X-Forwarded-Proto: https counts from a trusted proxy only. PETCAM_PROXY_SSL_HEADER
# unset: on with PETCAM_TLS behind PETCAM_TRUSTED_PROXIES; =1 without them is refused.
try:
    _proxy_ssl_header = proxy_headers.proxy_ssl_header(
        env_bool("PETCAM_PROXY_SSL_HEADER", False)
        if os.environ.get("PETCAM_PROXY_SSL_HEADER", "").strip() else None,
        PETCAM_TLS, PETCAM_TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = _proxy_ssl_header
# One line per request on the `petcam.access` logger, credentials cut (access_log.py).
PETCAM_ACCESS_LOG = env_bool("PETCAM_ACCESS_LOG", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The portal's languages (docs/translations.md): English, and those of the project's notes.
LANGUAGES = [("en", "English"), ("ja", "日本語"), ("ru", "Русский")]
# locale/<lang>/LC_MESSAGES/django.po (templates, Python) and djangojs.po (the pages' JS);
# the compiled .mo files are committed (python -m petcam_site.compile_translations).
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The site-wide CSS/JS of templates/base.html (app pages' files are in <app>/static/).
STATICFILES_DIRS = [BASE_DIR / "petcam_site" / "static"]
MEDIA_ROOT = Path(os.environ.get("PETCAM_MEDIA_ROOT", VAR_DIR / "media"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "petcam_site.auth.BearerTokenAuthentication",
    ],
    # Logged in and holding a role (petcam_site/permissions.py); views narrow it further.
    "DEFAULT_PERMISSION_CLASSES": ["petcam_site.permissions.HasRole"],
    "EXCEPTION_HANDLER": "petcam_site.api_errors.exception_handler",
    # DRF's three, with petcam's JSON parser (deep nesting, lone surrogates: 400, not 500).
    "DEFAULT_PARSER_CLASSES": ["petcam_site.parsers.JSONParser",
                               "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    # Throttles (none yet) count REMOTE_ADDR: petcam_site/proxy_headers.py already took
    # it from trusted proxies; DRF's default would believe any X-Forwarded-For.
    "NUM_PROXIES": 0,
    # ?format= is ours (CSV export), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    # GET /api/schema/ (drf-spectacular); tests/support/openapi.json is the reviewed copy.
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "petcam API",
    "DESCRIPTION": ("REST API of the petcam portal for mobile clients. Errors are "
                    '{"error": code, "detail": text}. Authenticate with '
                    "`Authorization: Bearer <token>` from POST /api/auth/token/."),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Only /health and the login page are public (DESIGN.md): the schema needs a login too.
    "SERVE_PERMISSIONS": ["petcam_site.permissions.HasRole"],  # a role, as every API
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "petcam_site.api_schema.document_body_limits"],
}

# --- Camera and media worker ---
PETCAM_SHM_STREAM = os.environ.get("PETCAM_SHM_STREAM", "/pet_camera_stream")
PETCAM_SHM_DETECTIONS = os.environ.get("PETCAM_SHM_DETECTIONS", "/pet_camera_detections")
PETCAM_CAMERA_SLUG = os.environ.get("PETCAM_CAMERA", "default")
PETCAM_MAX_VIEWERS = env_int("PETCAM_MAX_VIEWERS", 10)
# One user's sessions per camera (0: no cap; 429 too_many_sessions beyond). A user's
# offer that would be refused replaces their own oldest session not connected yet.
PETCAM_MAX_VIEWERS_PER_USER = env_int("PETCAM_MAX_VIEWERS_PER_USER", 3)
# "inprocess": the media worker runs inside the ASGI server (embedded default);
# "external": separate `manage.py media_worker` processes (production).
PETCAM_WORKER_MODE = os.environ.get(
    "PETCAM_WORKER_MODE", "external" if REDIS_URL else "inprocess"
)
if PETCAM_WORKER_MODE not in ("inprocess", "external", "off"):
    raise ImproperlyConfigured("PETCAM_WORKER_MODE must be inprocess, external or off")
# WebRTC viewers: give up on a peer not connected after PETCAM_ICE_TIMEOUT s, or
# silent (no RTCP) for PETCAM_PEER_SILENCE_TIMEOUT s.
PETCAM_ICE_TIMEOUT = float(os.environ.get("PETCAM_ICE_TIMEOUT", "8"))
PETCAM_PEER_SILENCE_TIMEOUT = float(os.environ.get("PETCAM_PEER_SILENCE_TIMEOUT", "10"))
# STUN/TURN for browsers, API clients and the media worker (streaming/ice_servers.py,
# GET /api/webrtc/ice-servers/): PETCAM_ICE_SERVERS as given to everyone; TURN URLs
# (comma list) get a per-user credential valid PETCAM_TURN_TTL s, signed with coturn's
# static-auth-secret. Policy "relay": clients use only the TURN relay. The media worker
# uses the STUN servers, and the TURN ones too with PETCAM_WORKER_TURN.
try:
    PETCAM_ICE_SERVERS = json.loads(os.environ.get("PETCAM_ICE_SERVERS", "[]"))
    PETCAM_ICE = ice_servers.parse(
        PETCAM_ICE_SERVERS, os.environ.get("PETCAM_TURN_URLS", ""),
        os.environ.get("PETCAM_TURN_SECRET", ""), env_int("PETCAM_TURN_TTL", 3600),
        os.environ.get("PETCAM_ICE_TRANSPORT_POLICY", "all").strip().lower())
except ValueError as exc:  # json.JSONDecodeError is one too
    raise ImproperlyConfigured(f"ICE servers: {exc}") from exc
PETCAM_WORKER_TURN = env_bool("PETCAM_WORKER_TURN", False)
PETCAM_VIEWER_QUEUE_FRAMES = env_int("PETCAM_VIEWER_QUEUE_FRAMES", 90)
# Live over WebSocket + MSE: fragments a browser may have unacknowledged before the worker
# stops sending (its queue then overflows and skips to the next IDR, like a slow peer).
PETCAM_MSE_WINDOW_FRAMES = env_int("PETCAM_MSE_WINDOW_FRAMES", 30)
if PETCAM_MSE_WINDOW_FRAMES < 1:
    raise ImproperlyConfigured("PETCAM_MSE_WINDOW_FRAMES must be at least 1")
# RTP payload size: aiortc's 1300 gives ~1336-byte datagrams, too big for a 1280 VPN MTU.
PETCAM_RTP_PACKET_MAX = env_int("PETCAM_RTP_PACKET_MAX", 1200)
# Benchmark switches: packetize once for all viewers; start viewers from the cached GOP.
PETCAM_SHARED_PACKETIZER = env_bool("PETCAM_SHARED_PACKETIZER", True)
PETCAM_GOP_REPLAY = env_bool("PETCAM_GOP_REPLAY", True)
# Send RTP with petcam's per-frame loop (off: aiortc's own per-packet loop, for comparison).
PETCAM_LEAN_SENDER = env_bool("PETCAM_LEAN_SENDER", True)
# Lean sender: spread a big frame (an IDR) over most of a frame interval, not one burst:
# "auto" (default) once the viewer reports a lost packet of one (a NACK), 1 always, 0 never.
PETCAM_PACING: bool | str = ("auto" if os.environ.get("PETCAM_PACING", "auto").strip().lower()
                             == "auto" else env_bool("PETCAM_PACING", True))
# Lean sender: a burst of a viewer's packets in one sendmmsg (0: one sendto per packet).
PETCAM_BATCH_SEND = env_bool("PETCAM_BATCH_SEND", True)
# Detections reader: sleep until the next result is due (0: poll every 2 ms throughout).
PETCAM_DETECTIONS_PACING = env_bool("PETCAM_DETECTIONS_PACING", True)
# With no viewer and no recording the shm reader polls once a frame, without the writer
# probe; with no detector writing the detections poll backs off to 100 ms (0: never relax).
PETCAM_IDLE_RELAX = env_bool("PETCAM_IDLE_RELAX", True)
# Pace of the cached-GOP replay to a new viewer, in Mbit/s (live frames go at camera rate).
PETCAM_CATCH_UP_MBITS = float(os.environ.get("PETCAM_CATCH_UP_MBITS", "80"))
# Open camera sockets check their user's access again this often (seconds; 0 = only when
# told of a change and on each offer/close): the backstop for changes no signal reports.
PETCAM_WS_RECHECK_SECONDS = float(os.environ.get("PETCAM_WS_RECHECK_SECONDS", "60"))
# Camera events (detections, status) reach this process's sockets through one channel-layer
# member per camera that writes each event, encoded once, to every local socket
# (streaming/live_fanout.py). "group": each socket in the camera's group, as before (for
# the side-by-side benchmark).
PETCAM_WS_FANOUT = os.environ.get("PETCAM_WS_FANOUT", "process").strip().lower()
if PETCAM_WS_FANOUT not in ("process", "group"):
    raise ImproperlyConfigured(f"PETCAM_WS_FANOUT must be process or group, "
                               f"not {PETCAM_WS_FANOUT!r}")
# A socket whose unsent bytes (in daphne's write buffer) pass this gets no more events
# until it drains, then only the newest of each kind: a stalled client never queues more.
PETCAM_WS_BACKLOG_BYTES = env_int("PETCAM_WS_BACKLOG_BYTES", 64 * 1024)
# Benchmarks: detection messages carry the monotonic time of each stage ("trace").
PETCAM_DETECTIONS_TRACE = env_bool("PETCAM_DETECTIONS_TRACE", False)
PETCAM_SIGNALING_TIMEOUT = float(os.environ.get("PETCAM_SIGNALING_TIMEOUT", "10"))
# An offer that arrives while the camera is live but before its first SPS (the reader
# joined mid-GOP) waits this long for it, so the answer states the real profile.
PETCAM_SPS_WAIT_SECONDS = float(os.environ.get("PETCAM_SPS_WAIT_SECONDS", "3"))
PETCAM_MAX_SDP_BYTES = env_int("PETCAM_MAX_SDP_BYTES", 64 * 1024)
# Request bodies (petcam_site/body_limits.py): larger ones get 413 `too_large` before they
# are read. First matching path regex wins, else PETCAM_MAX_BODY_BYTES (login forms...).
PETCAM_MAX_BODY_BYTES = env_int("PETCAM_MAX_BODY_BYTES", 16 * 1024)
PETCAM_MAX_API_BODY_BYTES = env_int("PETCAM_MAX_API_BODY_BYTES", 64 * 1024)
PETCAM_MAX_ADMIN_BODY_BYTES = env_int("PETCAM_MAX_ADMIN_BODY_BYTES", 1024 * 1024)
PETCAM_BODY_LIMITS = [
    # SDP offers: the JSON offer endpoints and WHEP (views check the SDP itself again)
    (r"^/(api/cameras/[^/]+/webrtc/offer/|api/webrtc/offer$|whep/)", PETCAM_MAX_SDP_BYTES),
    (r"^/api/", PETCAM_MAX_API_BODY_BYTES),
    (r"^/admin/", PETCAM_MAX_ADMIN_BODY_BYTES),
]
# Django's own cap on request.body and form data, at the largest route limit (DRF's
# parsers read the stream and skip it: the limits above are what holds).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(PETCAM_MAX_BODY_BYTES,
                                  *(limit for _, limit in PETCAM_BODY_LIMITS))
# The server sends STUN to every ICE candidate an offer names: at most this many per
# offer (400 invalid_sdp beyond), and none on loopback or link-local addresses unless
# allowed (tests whose viewers run on the same machine).
PETCAM_MAX_OFFER_CANDIDATES = env_int("PETCAM_MAX_OFFER_CANDIDATES", 32)
PETCAM_ALLOW_LOCAL_CANDIDATES = env_bool("PETCAM_ALLOW_LOCAL_CANDIDATES", False)
# Detection history: one detector result stored per this many seconds, kept this many days.
PETCAM_DETECTION_SAMPLE_SECONDS = float(os.environ.get("PETCAM_DETECTION_SAMPLE_SECONDS", "1.0"))
PETCAM_DETECTION_RETENTION_DAYS = float(os.environ.get("PETCAM_DETECTION_RETENTION_DAYS", "30"))
# Activity counts sightings: one class's samples with no break longer than this are one
# sighting (detections/history.py sighting_counts). At least 1.5 sample periods.
PETCAM_SIGHTING_GAP_SECONDS = float(os.environ.get("PETCAM_SIGHTING_GAP_SECONDS", "5.0"))
# Recording playback: a signed HLS link (?sig=) stays valid this many seconds plus the
# recording's length; a password change or token revoke ends it at once (signed_links.py).
PETCAM_HLS_LINK_SECONDS = env_int("PETCAM_HLS_LINK_SECONDS", 15 * 60)
# Recorder: queue depth before it drops to the next IDR, default format, how
# often live figures are saved, and the free space below which a start is refused.
PETCAM_RECORDER_QUEUE_FRAMES = env_int("PETCAM_RECORDER_QUEUE_FRAMES", 300)
PETCAM_RECORDING_FORMAT = os.environ.get("PETCAM_RECORDING_FORMAT", "mp4")
PETCAM_RECORDING_CHECKPOINT_SECONDS = float(
    os.environ.get("PETCAM_RECORDING_CHECKPOINT_SECONDS", "5"))
PETCAM_RECORDING_MIN_FREE_BYTES = env_int("PETCAM_RECORDING_MIN_FREE_BYTES", 256 * 1024)
# Event recording (recordings/event_trigger.py): a detection of one of these classes
# (comma list; empty = off) at or above the confidence starts a recording that begins
# PREROLL s before it and ends POSTROLL s after the last such detection.
PETCAM_EVENT_CLASSES = os.environ.get("PETCAM_EVENT_CLASSES", "")
PETCAM_EVENT_MIN_CONFIDENCE = float(os.environ.get("PETCAM_EVENT_MIN_CONFIDENCE", "0.5"))
PETCAM_EVENT_PREROLL_SECONDS = float(os.environ.get("PETCAM_EVENT_PREROLL_SECONDS", "5"))
PETCAM_EVENT_POSTROLL_SECONDS = float(os.environ.get("PETCAM_EVENT_POSTROLL_SECONDS", "10"))
# Event rules (events/): an event ends this long after its last qualifying detection;
# the worker re-reads the rules this often; rules may name these detector classes
# (comma-separated; empty: the YOLO detector's 80 COCO classes, events/rules.py).
PETCAM_EVENT_END_SECONDS = float(os.environ.get("PETCAM_EVENT_END_SECONDS", "3"))
PETCAM_EVENT_RULES_REFRESH_SECONDS = float(
    os.environ.get("PETCAM_EVENT_RULES_REFRESH_SECONDS", "5"))
# Events (rows, snapshot JPEGs) and the webhook delivery log are kept this many days
# (events/retention.py, `manage.py purge_events`; 0: for ever). Clips are recordings:
# their own retention (PETCAM_RETENTION_*) applies, the event keeps its snapshot.
PETCAM_EVENT_RETENTION_DAYS = float(os.environ.get("PETCAM_EVENT_RETENTION_DAYS", "30"))
# The start hooks (push, MQTT, webhooks) wait at most this for the start snapshot; a
# later one is stored when done and the start's messages go without it.
PETCAM_EVENT_START_SNAPSHOT_WAIT_SECONDS = float(
    os.environ.get("PETCAM_EVENT_START_SNAPSHOT_WAIT_SECONDS", "0.75"))
PETCAM_DETECTION_CLASSES = [c.strip() for c in os.environ.get(
    "PETCAM_DETECTION_CLASSES", "").split(",") if c.strip()]
# Event rules' webhooks (events/webhooks.py): attempts, first wait (doubles), per-request
# timeout; a delivery not made within MAX_AGE (also across worker restarts) is given up;
# loopback/link-local targets only when allowed (tests, a receiver on the board).
PETCAM_WEBHOOK_MAX_ATTEMPTS = env_int("PETCAM_WEBHOOK_MAX_ATTEMPTS", 5)
PETCAM_WEBHOOK_MAX_AGE_SECONDS = float(os.environ.get("PETCAM_WEBHOOK_MAX_AGE_SECONDS", "3600"))
PETCAM_WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("PETCAM_WEBHOOK_BACKOFF_SECONDS", "2"))
PETCAM_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("PETCAM_WEBHOOK_TIMEOUT_SECONDS", "5"))
PETCAM_WEBHOOK_ALLOW_LOCAL = env_bool("PETCAM_WEBHOOK_ALLOW_LOCAL", False)
# MQTT and Home Assistant (events/mqtt*.py): off while PETCAM_MQTT_URL is empty;
# mqtt://host:1883 or mqtts://host:8883 (TLS, checked against the CA file or the system's).
PETCAM_MQTT_URL = os.environ.get("PETCAM_MQTT_URL", "")
PETCAM_MQTT_USERNAME = os.environ.get("PETCAM_MQTT_USERNAME", "")
PETCAM_MQTT_PASSWORD = os.environ.get("PETCAM_MQTT_PASSWORD", "")
PETCAM_MQTT_CA_FILE = os.environ.get("PETCAM_MQTT_CA_FILE", "")
PETCAM_MQTT_PREFIX = os.environ.get("PETCAM_MQTT_PREFIX", "petcam")
PETCAM_MQTT_DISCOVERY_PREFIX = os.environ.get("PETCAM_MQTT_DISCOVERY_PREFIX", "homeassistant")
# Event messages kept while the broker is away (oldest dropped, counted, beyond it).
PETCAM_MQTT_QUEUE_SIZE = env_int("PETCAM_MQTT_QUEUE_SIZE", 1000)
# Classes that get a Home Assistant binary sensor and count from the start (others once seen).
PETCAM_MQTT_CLASSES = [c.strip() for c in os.environ.get(
    "PETCAM_MQTT_CLASSES", "cat,dog,person").split(",") if c.strip()]
PETCAM_MQTT_MAX_BACKOFF_SECONDS = float(os.environ.get("PETCAM_MQTT_MAX_BACKOFF_SECONDS", "30"))

# Phone notifications (events/push.py): Web Push to subscribed browsers at each event
# start. VAPID: the key is made once in VAR_DIR (events/vapid_keys.py), the subject is
# the contact push services see. Endpoints must be https on a public host unless
# PETCAM_PUSH_ALLOW_LOCAL (tests: a push service on loopback over http; never production).
PETCAM_VAPID_SUBJECT = os.environ.get("PETCAM_VAPID_SUBJECT", "mailto:petcam@localhost")
PETCAM_PUSH_TIMEOUT_SECONDS = float(os.environ.get("PETCAM_PUSH_TIMEOUT_SECONDS", "10"))
PETCAM_PUSH_TTL_SECONDS = env_int("PETCAM_PUSH_TTL_SECONDS", 3600)
PETCAM_PUSH_ALLOW_LOCAL = env_bool("PETCAM_PUSH_ALLOW_LOCAL", False)
PETCAM_PUSH_MAX_PER_USER = env_int("PETCAM_PUSH_MAX_PER_USER", 20)
# Retention (recordings/retention.py, `manage.py apply_retention`); 0 turns a rule off.
PETCAM_RETENTION_MAX_AGE_DAYS = float(os.environ.get("PETCAM_RETENTION_MAX_AGE_DAYS", "0"))
PETCAM_RETENTION_MAX_BYTES = env_int("PETCAM_RETENTION_MAX_BYTES", 0)
PETCAM_RETENTION_MIN_FREE_BYTES = env_int("PETCAM_RETENTION_MIN_FREE_BYTES", 0)
# Embedded worker: look for cameras added in the admin this often (seconds; 0 = off,
# then a new camera needs a restart). Changed or disabled cameras always need one.
PETCAM_CAMERA_WATCH_SECONDS = float(os.environ.get("PETCAM_CAMERA_WATCH_SECONDS", "5"))
# Seconds without a new frame before the camera counts as off.
PETCAM_STALL_SECONDS = float(os.environ.get("PETCAM_STALL_SECONDS", "2.0"))

# Logging (petcam_site/logging_config.py): readable lines, or LOG_FORMAT=json.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").lower()
try:
    LOGGING = logging_config.build(LOG_LEVEL, LOG_FORMAT)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
# How long /health waits for the media worker.
PETCAM_HEALTH_TIMEOUT = float(os.environ.get("PETCAM_HEALTH_TIMEOUT", "3"))
# How long /metrics waits for each camera's worker (then petcam_worker_up 0).
PETCAM_METRICS_TIMEOUT = float(os.environ.get("PETCAM_METRICS_TIMEOUT", "2"))

VAR_DIR.mkdir(parents=True, exist_ok=True)
# Scheduled recording (recordings.scheduler): how often the worker looks at the windows, and
# a segment length in seconds that overrides the schedules' minutes (tests only; 0: off).
PETCAM_SCHEDULE_POLL_SECONDS = float(os.environ.get("PETCAM_SCHEDULE_POLL_SECONDS", "5"))
PETCAM_SCHEDULE_SEGMENT_SECONDS = float(os.environ.get("PETCAM_SCHEDULE_SEGMENT_SECONDS", "0"))

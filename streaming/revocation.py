"""Live access follows the user's rights: open sockets and live video end when they change.

Every camera socket joins its user's channel-layer group (`user_group`), in whichever web
process it lives (the Redis layer reaches them all). When a user's rights or credentials
change (streaming/signals.py), `revoke_user_sockets()` tells that group and each socket
checks its own credential and rights again, closing if they no longer hold. Live video
opened over HTTP or WHEP has no socket: `end_user_sessions()` asks the cameras' media
workers to end it.

A "credential" is an opaque tag of the login something was opened with (one API token,
one login session), so revoking a token ends what that token opened and nothing else.
"""

from __future__ import annotations

import hashlib
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .worker_rpc import notify_worker

log = logging.getLogger("petcam.auth")

ACCESS_CHANGED = "user.access_changed"  # the consumers' handler: user_access_changed


def user_group(user_id: int) -> str:
    """Channel-layer group of one user's open camera sockets."""
    return f"petcam.user.{user_id}"


def _tag(kind: str, value: object) -> str:
    # A digest: raw token keys and session keys never travel to the worker or into logs.
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:16]


def token_credential(token) -> str:
    """Tag of an API token row (accounts.ApiToken; any token model with a pk works the same)."""
    return _tag(token._meta.label_lower, token.pk)


def session_credential(session_key: str) -> str:
    return _tag("session", session_key)


def request_credential(request) -> str | None:
    """The tag of what authenticated a DRF request: its token, else its login session."""
    auth = getattr(request, "auth", None)
    if auth is not None and getattr(auth, "_meta", None) is not None:
        return token_credential(auth)
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    return session_credential(key) if key else None


def revoke_user_sockets(user_id: int, reason: str, *, credential: str | None = None,
                        close_all: bool = False) -> None:
    """Tell every open socket of `user_id` that their access changed (sync code: signal
    receivers). `credential`: only sockets opened with it end, at once (token revoked,
    logout). `close_all`: every socket ends (password changed, account deleted).
    Otherwise each socket checks its access again and ends only if it is gone."""
    event = {"type": ACCESS_CHANGED, "reason": reason, "credential": credential,
             "close_all": close_all}
    try:
        async_to_sync(get_channel_layer().group_send)(user_group(user_id), event)
    except Exception as exc:  # the change itself must not fail: sockets re-check later too
        log.warning("could not tell user %s's sockets that %s (%s: %s); they notice at "
                    "their next check", user_id, reason, type(exc).__name__, exc)


def end_user_sessions(user_id: int, cameras: list[str], reason: str, *,
                      credential: str | None = None) -> None:
    """Ask the workers of `cameras` to end the live video `user_id` opened there (only
    what `credential` opened, if given). Fire and forget: no worker is waited for."""

    async def send_all() -> None:
        for camera in cameras:
            try:
                await notify_worker(camera, "end_user_sessions", user_id=user_id,
                                    credential=credential, reason=reason)
            except Exception as exc:
                log.warning("could not ask camera %s's worker to end user %s's sessions "
                            "(%s: %s)", camera, user_id, type(exc).__name__, exc)

    if cameras:
        async_to_sync(send_all)()

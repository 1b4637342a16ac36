"""ICE servers for viewers and the media worker: STUN as configured, TURN with short-lived
credentials in coturn's REST scheme.

coturn with `use-auth-secret` + `static-auth-secret=<secret>` accepts a username
`<expiry unix time>:<anything>` whose password is base64(HMAC-SHA1(secret, username)),
until that expiry: petcam hands every viewer its own such pair on each connect
(GET /api/webrtc/ice-servers/) and never stores one. docs/operations.md shows the coturn
side; settings.py reads PETCAM_ICE_SERVERS, PETCAM_TURN_URLS, PETCAM_TURN_SECRET,
PETCAM_TURN_TTL, PETCAM_ICE_TRANSPORT_POLICY and PETCAM_WORKER_TURN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

TRANSPORT_POLICIES = ("all", "relay")


def turn_credential(secret: str, user: str, expiry: int) -> tuple[str, str]:
    """(username, credential) coturn accepts for `user` until `expiry` (unix seconds)."""
    username = f"{int(expiry)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class IceConfig:
    """What settings say about ICE; `for_user()` builds the list a client gets."""

    static: tuple[dict, ...] = ()  # PETCAM_ICE_SERVERS, given to everyone as they are
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    ttl: int = 3600
    transport_policy: str = "all"

    def for_user(self, user: str, now: float | None = None) -> list[dict]:
        """The static servers, then the TURN URLs with a credential for `user`."""
        servers = [dict(s) for s in self.static]
        if self.turn_urls:
            expiry = int(time.time() if now is None else now) + self.ttl
            username, credential = turn_credential(self.turn_secret, user, expiry)
            servers.append({"urls": list(self.turn_urls), "username": username,
                            "credential": credential})
        return servers

    def for_client(self, user: str) -> dict:
        """GET /api/webrtc/ice-servers/'s body (RTCConfiguration's names)."""
        return {"iceServers": self.for_user(user), "ttl": self.ttl,
                "iceTransportPolicy": self.transport_policy}


def parse(static: object, turn_urls: str, turn_secret: str, ttl: int,
          transport_policy: str) -> IceConfig:
    """IceConfig from the raw settings, or ValueError saying which one is wrong."""
    if not isinstance(static, list) or not all(
            isinstance(s, dict) and isinstance(s.get("urls"), str | list) for s in static):
        raise ValueError('PETCAM_ICE_SERVERS must be a JSON list of {"urls": ...} objects, '
                         'e.g. [{"urls": "stun:stun.example.org"}]')
    urls = tuple(u.strip() for u in turn_urls.split(",") if u.strip())
    for url in urls:
        if not url.startswith(("turn:", "turns:")):
            raise ValueError(f"PETCAM_TURN_URLS: {url!r} is not a turn: or turns: URL")
    if urls and not turn_secret:
        raise ValueError("PETCAM_TURN_URLS is set but PETCAM_TURN_SECRET is empty: give "
                         "coturn's static-auth-secret")
    if ttl <= 0:
        raise ValueError(f"PETCAM_TURN_TTL must be a positive number of seconds, got {ttl}")
    if transport_policy not in TRANSPORT_POLICIES:
        raise ValueError(f"PETCAM_ICE_TRANSPORT_POLICY must be all or relay, got "
                         f"{transport_policy!r}")
    if transport_policy == "relay" and not urls and not any(
            _has_turn(s) for s in static):
        raise ValueError("PETCAM_ICE_TRANSPORT_POLICY=relay needs a TURN server "
                         "(PETCAM_TURN_URLS)")
    return IceConfig(tuple(static), urls, turn_secret, ttl, transport_policy)


def _has_turn(server: dict) -> bool:
    urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
    return any(str(u).startswith(("turn:", "turns:")) for u in urls)


def from_settings() -> IceConfig:
    from django.conf import settings

    return settings.PETCAM_ICE


def worker_ice_servers(camera: str) -> list[dict]:
    """What the media worker's peer connections use: the static servers (STUN), plus the
    TURN servers with a fresh credential when PETCAM_WORKER_TURN is on."""
    from django.conf import settings

    config: IceConfig = settings.PETCAM_ICE
    if settings.PETCAM_WORKER_TURN:
        return config.for_user(f"petcam-worker-{camera}")
    return [dict(s) for s in config.static]

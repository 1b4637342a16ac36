"""Where a webhook may go, Django-free: http(s) only, and never to this machine's loopback,
link-local, unspecified or multicast addresses (a rule must not reach the board's own
services or a cloud metadata endpoint) unless the operator allows local targets."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """The URL is malformed or cannot be reached now (its name does not resolve)."""


class TargetForbidden(TargetRefused):
    """The URL points somewhere webhooks may not go: never worth a retry."""


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    return None


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of a well-formed http(s) URL; TargetRefused otherwise."""
    if not isinstance(url, str) or len(url) > 2000:
        raise TargetRefused("A webhook URL is text of at most 2000 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("The webhook URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("A webhook URL starts with http:// or https:// and names a host.")
    if parts.username or parts.password:
        raise TargetRefused("A webhook URL may not carry a user name or password.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_literal(url: str, allow_local: bool) -> None:
    """At save time: refuse a URL whose host is a forbidden IP literal or 'localhost'."""
    host, _ = check_url(url)
    if allow_local:
        return
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
            ".localhost"):
        raise TargetForbidden("Webhooks may not go to this machine (localhost).")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: resolved and checked again at each delivery
    reason = _forbidden(address)
    if reason:
        raise TargetForbidden(f"Webhooks may not go to {reason} ({host}).")


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, as the system resolver gives them (tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_allowed(url: str, allow_local: bool) -> list[str]:
    """At delivery: the host's addresses, every one of them allowed. The caller connects
    to these (never resolves the name again): a name that answers with a public address
    now and a loopback one a moment later (DNS rebinding) cannot slip through."""
    host, port = check_url(url)
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise TargetRefused(f"{host} does not resolve: {exc}") from None
    if not addresses:
        raise TargetRefused(f"{host} does not resolve to any address.")
    if not allow_local:
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            reason = _forbidden(address)
            if reason:
                raise TargetForbidden(f"{host} resolves to {reason} ({address}): refused.")
    return addresses

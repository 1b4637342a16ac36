"""API tokens for tests: make one the way the account page does (hashed, shown once)."""

from __future__ import annotations


def make_token(user, name: str = "test") -> str:
    """A new API token (accounts/tokens.py) for `user`; returns the key to send as
    `Authorization: Bearer <key>`."""
    from accounts.tokens import create_token

    return create_token(user, name)[1]

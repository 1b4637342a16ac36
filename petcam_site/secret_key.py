"""Django's SECRET_KEY: from the environment, or made once and kept under var/.

`make run` and the tests need no set-up: the first process that starts without
DJANGO_SECRET_KEY writes a random key to VAR_DIR/secret_key (mode 0600) and every
later process of that install reads it. Several web hosts sharing one database
must share the key: set DJANGO_SECRET_KEY on all of them.

The development key that older petcam versions used as their default, an empty key,
a Django "insecure" placeholder, an example file's "change-me" or a short key is
refused unless DEBUG is on.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

DEV_SECRET_KEY = "petcam-dev-only-not-secret"
KEY_FILE_NAME = "secret_key"
MIN_LENGTH = 32
# An example file's value copied as is (deploy/systemd/petcam.env.example).
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me")


def load(var_dir: Path) -> str:
    """DJANGO_SECRET_KEY if set, else the install's stored key (made now if missing)."""
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key is not None:
        return key
    path = Path(var_dir) / KEY_FILE_NAME
    try:
        return _read(path) if path.exists() else _create(path)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"Cannot read or create the secret key file {path} ({exc.strerror}): set "
            "DJANGO_SECRET_KEY or make PETCAM_VAR_DIR writable.") from exc


def _read(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"The secret key file {path} is empty: delete it to make "
                                   "a new one (this logs everybody out).")
    return key


def _create(path: Path) -> str:
    """Write a new key atomically: two processes starting at once end up with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    tmp = path.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        os.link(tmp, path)  # fails if another process got there first: use its key
    except FileExistsError:
        return _read(path)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def insecure_reason(key: str) -> str | None:
    """Why `key` must not sign sessions in production, or None if it may."""
    if key == DEV_SECRET_KEY:
        return "it is petcam's published development key"
    if key.startswith("django-insecure"):
        return "it is a Django 'insecure' placeholder"
    if any(word in key.lower() for word in PLACEHOLDER_WORDS):
        return "it is a placeholder from an example file"
    if len(key) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    return None


def refuse_insecure(key: str, debug: bool) -> None:
    """With DEBUG off, refuse to start on a key anyone could know or guess."""
    reason = insecure_reason(key)
    if reason and not debug:
        raise ImproperlyConfigured(
            f"Refusing to start: DEBUG is off and the secret key is insecure ({reason}). "
            "Set DJANGO_SECRET_KEY to a long random value, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, or unset it to "
            "use the key petcam keeps in var/secret_key. Development only: PETCAM_DEBUG=1.")

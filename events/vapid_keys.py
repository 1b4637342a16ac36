"""The install's VAPID key pair: made once on first use, kept in VAR_DIR/vapid_private_key.pem.

Like the Django secret key (petcam_site/secret_key.py): 0600, written atomically so two
processes starting at once share one key. Browsers subscribe with its public half; a new
key would orphan every subscription, so it is never rotated silently. PETCAM_VAPID_PRIVATE_KEY
(a PEM) overrides the file, for several hosts sharing one database.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .webpush import b64url, public_bytes

KEY_FILE_NAME = "vapid_private_key.pem"


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _parse(pem: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"The VAPID key in {where} is not a PEM private key.") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ImproperlyConfigured(f"The VAPID key in {where} must be a P-256 EC key.")
    return key


def _create(path: Path) -> ec.EllipticCurvePrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    tmp = path.with_name(f".{KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_pem(key))
        os.link(tmp, path)  # another process got there first: use its key
    except FileExistsError:
        return _parse(path.read_bytes(), str(path))
    finally:
        tmp.unlink(missing_ok=True)
    return key


def load(var_dir: Path) -> ec.EllipticCurvePrivateKey:
    pem = os.environ.get("PETCAM_VAPID_PRIVATE_KEY")
    if pem:
        return _parse(pem.encode(), "PETCAM_VAPID_PRIVATE_KEY")
    path = Path(var_dir) / KEY_FILE_NAME
    try:
        return _parse(path.read_bytes(), str(path)) if path.exists() else _create(path)
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read or create the VAPID key file {path} "
                                   f"({exc.strerror}).") from exc


@functools.cache
def _cached(var_dir: str) -> ec.EllipticCurvePrivateKey:
    return load(Path(var_dir))


def private_key() -> ec.EllipticCurvePrivateKey:
    return _cached(str(settings.VAR_DIR))


def public_key_b64() -> str:
    """What pushManager.subscribe takes as applicationServerKey."""
    return b64url(public_bytes(private_key().public_key()))

"""The embedded SQLite database file, readable by its owner only (0600).

SQLite creates the file with the process umask (usually 0644: anyone on the machine
could read password hashes, sessions and token digests). It is made here first, empty
and 0600, and an existing one is tightened; SQLite gives its -journal/-wal/-shm files
the database file's mode. PostgreSQL (DATABASE_URL) is not concerned.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MODE = 0o600
COMPANIONS = ("-journal", "-wal", "-shm")


def secure(path: str | os.PathLike) -> None:
    """Create `path` 0600 if missing, else drop group/other bits from it (and its
    companions) when this user owns it."""
    name = str(path)
    if name in ("", ":memory:") or name.startswith("file:"):
        return
    db = Path(name)
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))
        return
    except FileExistsError:
        pass
    for file in (db, *(db.with_name(db.name + c) for c in COMPANIONS)):
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(file, MODE)

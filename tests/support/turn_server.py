"""A real coturn (Debian `coturn`) for tests and benchmarks: on 127.0.0.1 and a free port,
REST-API credentials (use-auth-secret), stopped afterwards; plus a TURN allocation with
aioice, to ask coturn whether it accepts a credential."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import Proc, pick_free_port, wait_for

TURNSERVER = "/usr/bin/turnserver"


@dataclass(frozen=True)
class TurnServer:
    host: str
    port: int
    secret: str
    proc: Proc

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def site_env(self, **extra: str) -> dict[str, str]:
        """The petcam settings that point at this server."""
        return {"PETCAM_TURN_URLS": self.url, "PETCAM_TURN_SECRET": self.secret, **extra}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_coturn(log_dir: Path, *, secret: str | None = None) -> Iterator[TurnServer]:
    """turnserver with petcam's recommended options (deploy/coturn/turnserver.conf), but on
    loopback: relays on 127.0.0.1 and may relay to loopback peers (the test's viewers)."""
    if not shutil.which(TURNSERVER):
        raise RuntimeError(f"{TURNSERVER} is missing: `make test` installs Debian's coturn")
    secret = secret or secrets.token_urlsafe(24)
    port = pick_free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [TURNSERVER, "-n",  # no config file: everything is here
           "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
           "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=petcam.test",
           "--fingerprint", "--no-cli", "--no-tls", "--no-dtls", "--no-multicast-peers",
           "--allow-loopback-peers",  # test only: peers are on this machine
           f"--userdb={log_dir / f'turndb-{port}'}", f"--pidfile={log_dir / f'turn-{port}.pid'}",
           "--log-file=stdout", "--simple-log", "--verbose"]
    proc = Proc("coturn", cmd, {}, log_dir)
    try:
        wait_for(lambda: _listening(port) or not proc.alive(), 15, "coturn to listen")
        assert proc.alive(), proc.log()
        yield TurnServer("127.0.0.1", port, secret, proc)
    finally:
        proc.stop()


async def allocate(server: TurnServer, username: str, credential: str) -> tuple[str, int]:
    """A TURN allocation over UDP with this credential: the relayed address, or aioice's
    TransactionFailed (coturn's error code and reason, e.g. 401 Unauthorized)."""
    from aioice import turn

    class Quiet(asyncio.DatagramProtocol):
        pass

    transport, _ = await turn.create_turn_endpoint(
        Quiet, server_addr=(server.host, server.port), username=username,
        password=credential, lifetime=60, ssl=False, transport="udp")
    try:
        return transport.get_extra_info("sockname")
    finally:
        transport.close()

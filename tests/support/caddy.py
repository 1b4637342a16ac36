"""Caddy in front of a test site: the shipped rules (deploy/caddy/petcam.caddy) on free
loopback ports, with a throwaway certificate for `localhost` from Caddy's own CA.

Only the top of the Caddyfile is the test's: the global options a test needs (no admin
API, no trust-store install, free ports, no HTTP/3 on a UDP port aiortc might take) and
a site block bound to 127.0.0.1 that imports the rules exactly as deploy/caddy/Caddyfile
does. Caddy keeps its CA and certificates under the test's tmp dir (XDG_DATA_HOME).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ROOT, Proc, pick_free_port, wait_for

DEPLOY = ROOT / "deploy" / "caddy"
RULES = DEPLOY / "petcam.caddy"
HOST = "localhost"

TEST_CADDYFILE = """{{
	admin off
	skip_install_trust
	http_port {http_port}
	https_port {https_port}
	servers {{
		protocols h1 h2
		timeouts {{
			read_header 10s
		}}
	}}
}}
https://{host}:{https_port} {{
	bind 127.0.0.1
	import {rules}
}}
"""


def caddy_binary() -> str:
    found = shutil.which("caddy")
    if not found:
        raise RuntimeError("caddy is missing: `make test` installs Debian's caddy")
    return found


def caddy_env(home: Path, **extra: str) -> dict[str, str]:
    """Caddy's environment: its data (CA, certificates) and autosaved config under `home`."""
    return {"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            **extra}


def validate(config: Path, home: Path) -> subprocess.CompletedProcess:
    """`caddy validate` of a Caddyfile (parses it, imports included, and loads every
    module; obtains no certificate)."""
    return subprocess.run([caddy_binary(), "validate", "--config", str(config),
                           "--adapter", "caddyfile"], env=caddy_env(home),
                          capture_output=True, text=True, timeout=60)


@dataclass
class Proxy:
    base: str  # https://localhost:<port>
    http_base: str  # http://localhost:<port>: Caddy's redirect to https
    https_port: int
    root_ca: Path  # Caddy's local root certificate: trust it to verify `base`
    proc: Proc

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_ca))


def _two_ports() -> tuple[int, int]:
    first = pick_free_port()
    while (second := pick_free_port()) == first:
        pass
    return first, second


@contextlib.contextmanager
def running_caddy(upstream_port: int, home: Path) -> Iterator[Proxy]:
    """Caddy serving https://localhost:<free port> in front of 127.0.0.1:upstream_port,
    up (its certificate verifies against its root) until the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    https_port, http_port = _two_ports()
    config = home / "Caddyfile"
    config.write_text(TEST_CADDYFILE.format(http_port=http_port, https_port=https_port,
                                            host=HOST, rules=RULES))
    proc = Proc("caddy", [caddy_binary(), "run", "--config", str(config),
                          "--adapter", "caddyfile"],
                caddy_env(home, PETCAM_UPSTREAM=f"127.0.0.1:{upstream_port}"), home / "logs")
    root_ca = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def serving() -> bool:
        if not proc.alive():
            raise AssertionError(f"caddy exited:\n{proc.log()}")
        if not root_ca.exists():
            return False
        try:
            context = ssl.create_default_context(cafile=str(root_ca))
            with socket.create_connection(("127.0.0.1", https_port), timeout=2) as sock, \
                    context.wrap_socket(sock, server_hostname=HOST):
                return True
        except (OSError, ssl.SSLError):
            return False

    try:
        wait_for(serving, 30, "caddy to serve https")
        yield Proxy(f"https://{HOST}:{https_port}", f"http://{HOST}:{http_port}", https_port,
                    root_ca, proc)
    finally:
        proc.stop()

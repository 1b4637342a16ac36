"""Real petcam processes for end-to-end tests and benchmarks: the site, the media worker,
the simulator; a free port, a child process with its log, waiting for a condition."""

from __future__ import annotations

import asyncio
import atexit
import functools
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
VENV_BIN = Path(sys.executable).parent


def site_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for one isolated install: own var dir, own shm segment names."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PETCAM_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update({
        "PETCAM_VAR_DIR": str(tmp_path / "var"),
        "PETCAM_SHM_STREAM": f"/petcam_e2e_{tag}_stream",
        "PETCAM_SHM_DETECTIONS": f"/petcam_e2e_{tag}_det",
        "PETCAM_STALL_SECONDS": "1.0",
        # Test viewers run on this machine and may name its loopback in their offers.
        "PETCAM_ALLOW_LOCAL_CANDIDATES": "1",
        # Most tests open many viewers with one account; test_viewer_slots.py
        # sets the real limits.
        "PETCAM_MAX_VIEWERS_PER_USER": "0",
        # Every test client logs in from 127.0.0.1, and schemathesis sends many bad logins:
        # the per-address cap (tested in tests/unit/test_login_throttle.py) would lock
        # every later test on a shared site out.
        "PETCAM_LOGIN_ADDRESS_FAILURE_LIMIT": "100000",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "petcam_site.settings",
    })
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    out = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def _real_database(env: dict[str, str]) -> bool:
    return "DATABASE_URL" in env or "PETCAM_SQLITE_PATH" in env


@functools.cache
def _templates() -> tuple[Path, Path, tuple[str, str]]:
    """Var dirs of an embedded install migrated once per test run, and of a copy with the
    admin created as `make run` does; that admin's username and password."""
    base = Path(tempfile.mkdtemp(prefix="petcam-template-"))
    atexit.register(shutil.rmtree, base, True)
    manage(site_env(base / "migrated"), "migrate", "--noinput")
    shutil.copytree(base / "migrated" / "var", base / "admin" / "var")
    admin = create_admin(site_env(base / "admin"))
    return base / "migrated" / "var", base / "admin" / "var", admin


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` for env's install. An embedded (SQLite) install gets a copy of
    one template migrated once per run: a migrate costs ~2 s of CPU, a run starts ~40."""
    if _real_database(env):
        manage(env, "migrate", "--noinput")
    else:
        shutil.copytree(_templates()[0], env["PETCAM_VAR_DIR"], dirs_exist_ok=True)


def install(env: dict[str, str]) -> tuple[str, str]:
    """migrate + ensure_admin, as `make run` does; the admin's username and password.
    Embedded installs are copies of one template (all share its admin credentials)."""
    if _real_database(env):
        migrate(env)
        return create_admin(env)
    _, admin_dir, credentials = _templates()
    shutil.copytree(admin_dir, env["PETCAM_VAR_DIR"], dirs_exist_ok=True)
    return credentials


def create_admin(env: dict[str, str]) -> tuple[str, str]:
    """Run ensure_admin as `make run` does and read the printed credentials."""
    out = manage(env, "ensure_admin")
    found = re.search(r"username: (\S+)\s+password: (\S+)", out)
    assert found, out
    return found.group(1), found.group(2)


def create_token(env: dict[str, str], username: str) -> str:
    """A new API token for `username`, as a mobile app would hold (tests/support/tokens.py)."""
    out = manage(env, "shell", "-c",
                 "from django.contrib.auth.models import User;"
                 "from tests.support.tokens import make_token;"
                 f"print(make_token(User.objects.get(username={username!r})))")
    return out.strip().splitlines()[-1]


def pick_free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Install:
    """One isolated install with its site running, as `make run` leaves it."""

    env: dict[str, str]
    username: str
    password: str
    port: int
    site: Proc

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_install(tmp: Path, port: int | None = None, **extra_env: str) -> Install:
    """Environment, migrations, the admin account and `manage.py serve`, logs in tmp/logs."""
    env = site_env(tmp, **extra_env)
    username, password = install(env)
    port = port or pick_free_port()
    return Install(env, username, password, port, start_site(env, port, tmp / "logs"))


class Proc:
    """A child process with its output in a log file; stopped like an operator would.

    new_session: start it in a session of its own, so that a Ctrl-C meant for a benchmark
    does not reach it (the benchmark stops it itself, in order)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, *,
                 new_session: bool = False) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=new_session)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log ("" if it cannot be read)."""
        try:
            return "\n".join(self.log().splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """predicate()'s first truthy value, asked every `interval` s; AssertionError (saying
    `what` and the last value) after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def until(predicate, timeout: float = 5.0, what: str = "the condition", *,
                in_thread: bool = True):
    """wait_for on an event loop: predicate()'s first truthy value, asked every 50 ms (in
    a thread, where it reads the database, unless in_thread=False); AssertionError after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(predicate) if in_thread else predicate()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def stop_install(install: Install, *beside: Proc | None) -> None:
    """Stop what a test ran beside the site (a simulator...), then the site, and remove
    the install's shared-memory segments."""
    from streaming.media.shm import segment as shm_segment

    for proc in beside:
        if proc is not None:
            proc.stop()
    install.site.stop()
    shm_segment.unlink(install.env["PETCAM_SHM_STREAM"])
    shm_segment.unlink(install.env["PETCAM_SHM_DETECTIONS"])


def start_site(env: dict[str, str], port: int, log_dir: Path, *,
               plain_daphne: bool = False, serve_args: tuple[str, ...] = ()) -> Proc:
    """`manage.py serve` (plus serve_args, e.g. --simulate --cameras 2), or plain daphne."""
    if plain_daphne:
        cmd = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port),
               "petcam_site.asgi:application"]
    else:
        cmd = [sys.executable, "manage.py", "serve", "--port", str(port), *serve_args]
    proc = Proc("site", cmd, env, log_dir)
    url = f"http://127.0.0.1:{port}/health"

    def up() -> bool:
        if not proc.alive():
            raise AssertionError(f"site exited:\n{proc.log()}")
        try:
            urllib.request.urlopen(url, timeout=2)
        except urllib.error.HTTPError:
            return True  # 503 is an answer
        except OSError:
            return False
        return True

    wait_for(up, 30, "the site to listen")
    return proc


def start_simulator(env: dict[str, str], log_dir: Path, *args: str) -> Proc:
    cmd = [sys.executable, "manage.py", "simulate_camera", "--width", "320", "--height", "240",
           *args]
    proc = Proc("simulator", cmd, env, log_dir)
    segment = Path("/dev/shm") / env["PETCAM_SHM_STREAM"].lstrip("/")
    wait_for(lambda: segment.exists() or not proc.alive(), 30, "the simulator's segment")
    assert proc.alive(), proc.log()
    return proc


def start_worker(env: dict[str, str], log_dir: Path) -> Proc:
    return Proc("worker", [sys.executable, "manage.py", "media_worker"], env, log_dir)


class Client:
    """A browser-less user: cookies, CSRF and JSON over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def get_json(self, path: str) -> tuple[int, dict]:
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def login(self, username: str, password: str) -> None:
        self.request("GET", "/accounts/login/")
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrfmiddlewaretoken": self.csrf(), "next": "/"})
        status, headers, _ = self.request(
            "POST", "/accounts/login/", form.encode(),
            {"Content-Type": "application/x-www-form-urlencoded",
             "Referer": self.base + "/accounts/login/"})
        assert status == 302 and headers["Location"] == "/", f"login failed: {status}"

    def record(self, seconds: float, name: str, camera: str = "default") -> dict:
        """Record `seconds` of the camera as this logged-in user; the stopped recording."""
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.csrf(),
                   "Referer": self.base + "/"}
        status, _, body = self.request("POST", f"/api/cameras/{camera}/recording/start/",
                                       json.dumps({"name": name}).encode(), headers)
        assert status == 201, body
        time.sleep(seconds)
        status, _, body = self.request("POST", f"/api/cameras/{camera}/recording/stop/", b"{}",
                                       headers)
        assert status == 200, body
        return json.loads(body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

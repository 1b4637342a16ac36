"""Shared benchmark harness: a throw-away petcam install (simulator, worker, site) on loopback.

Each benchmark gets its own var dir, shm segment names, port and Redis
prefix, so it never touches a running petcam or another benchmark. Every
process started here is stopped by `Stack.close()` (use it as a context
manager), and the shm segments are removed even if the simulator was killed.
The child process, free port and waiting are the tests' own (tests/support/processes.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.support.processes import Proc, manage, pick_free_port, wait_for

PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
REDIS_URL = "redis://127.0.0.1:6379/0"
# Every child gets a bounded life even if the benchmark itself is killed and cannot stop it.
MAX_LIFETIME_S = 7200


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        import redis
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def fd_kinds(pid: int) -> dict[str, int]:
    """What a process's open fds are: udp/tcp/unix sockets, pipes, files, anon inodes."""
    inodes: dict[str, str] = {}
    for proto in ("udp", "udp6", "tcp", "tcp6", "unix"):
        try:
            with open(f"/proc/net/{proto}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    inode = parts[6] if proto == "unix" else parts[9]
                    inodes[inode] = proto.rstrip("6")
        except OSError:
            pass
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            kind = inodes.get(target[8:-1], "socket")
        elif target.startswith("pipe:"):
            kind = "pipe"
        elif target.startswith("anon_inode:"):
            kind = target[11:].strip("[]")
        else:
            kind = "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(values, p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute (drift of a sample)."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return round(60 * sum((t - mt) * (v - mv) for t, v in points) / var, 3)


def http_json(method: str, url: str, token: str | None, body: dict | None = None,
              timeout: float = 15) -> tuple[int, dict]:
    """One API call with a DRF token: (status, JSON body; {"error": text} if not JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"error": raw.decode(errors="replace")[:200]}


class Stack:
    """Simulator + petcam (embedded `serve`, or `media_worker` + daphne over Redis).

    mode "external" measures the media worker as its own process (production
    layout); "inprocess" is `manage.py serve` (daphne and the worker share a
    process, so HTTP handling is included in its CPU).
    """

    def __init__(self, *, width: int = 1920, height: int = 1080, fps: int = 30,
                 bitrate: int = 8000, gop: int | None = None, encode: str = "loop",
                 profile: str = "high", detect_fps: float = 0,
                 mode: str = "auto", max_viewers: int = 10,
                 extra_env: dict[str, str] | None = None, keep_logs: bool = False) -> None:
        if mode == "auto":
            mode = "external" if redis_available() else "inprocess"
        self.mode = mode
        self.sim_args = ["--width", str(width), "--height", str(height), "--fps", str(fps),
                         "--bitrate", str(bitrate), "--encode", encode,
                         "--detect-fps", str(detect_fps),
                         "--profile", profile, "--duration", str(MAX_LIFETIME_S)]
        if gop:
            self.sim_args += ["--gop", str(gop)]
        self.tmp = Path(tempfile.mkdtemp(prefix="petcam-bench-"))
        self.log_dir = self.tmp / "logs"
        self.log_dir.mkdir()
        self.keep_logs = keep_logs
        tag = uuid.uuid4().hex[:8]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PETCAM_", "DJANGO_"))}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        env.update({
            "PETCAM_VAR_DIR": str(self.tmp / "var"),
            "PETCAM_SHM_STREAM": f"/petcam_bench_{tag}_stream",
            "PETCAM_SHM_DETECTIONS": f"/petcam_bench_{tag}_det",
            "PETCAM_MAX_VIEWERS": str(max_viewers),
            # One account opens every viewer, all at once, on this machine.
            "PETCAM_MAX_VIEWERS_PER_USER": "0",
            "PETCAM_ALLOW_LOCAL_CANDIDATES": "1",
            # The status RPC must answer even from a worker busy with 30 viewers on a
            # loaded machine (default 1.5 s, then status says "worker_unreachable").
            "PETCAM_HEALTH_TIMEOUT": "5",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "petcam_site.settings",
        })
        if mode == "external":
            env.update({"REDIS_URL": REDIS_URL, "PETCAM_WORKER_MODE": "external",
                        "PETCAM_CHANNEL_PREFIX": f"petcam-bench-{tag}"})
        env.update(extra_env or {})
        self.env = env
        self.port = pick_free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.simulator: Proc | None = None
        self.worker: Proc | None = None
        self.site: Proc | None = None
        self.token: str | None = None

    @property
    def segment(self) -> str:
        return self.env["PETCAM_SHM_STREAM"]

    # --- set-up --------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 120, env: dict | None = None) -> str:
        return manage(env or self.env, *args, timeout=timeout)

    def prepare(self) -> None:
        """Database + a user with an API token."""
        self.manage("migrate", "--noinput")
        self.token = self.manage("shell", "-c", (
            "from django.contrib.auth.models import Group, User; "
            "from accounts.tokens import create_token; "
            "u = User.objects.create_user('bench', '', 'bench-password'); "
            "u.groups.add(Group.objects.get(name='operators')); "
            "print(create_token(u, 'benchmark')[1])")).strip().splitlines()[-1]

    def start_simulator(self) -> Proc:
        self.simulator = Proc("simulator", [PYTHON, "manage.py", "simulate_camera",
                                            *self.sim_args], self.env, self.log_dir,
                              new_session=True)
        seg = Path("/dev/shm") / self.segment.lstrip("/")
        wait_for(lambda: seg.exists() or not self.simulator.alive(), 60, "the simulator segment",
                 0.2)
        if not self.simulator.alive():
            raise RuntimeError(f"simulator exited:\n{self.simulator.log_tail()}")
        return self.simulator

    def start_server(self, extra_env: dict[str, str] | None = None) -> None:
        env = {**self.env, **(extra_env or {})}
        # GNU timeout passes our SIGTERM on to the server; the worker's own pid comes
        # from its status (process.pid), so the wrapper is never what gets measured.
        bounded = ["timeout", "-k", "10", str(MAX_LIFETIME_S)]
        if self.mode == "external":
            self.worker = Proc("worker", [*bounded, PYTHON, "manage.py", "media_worker"], env,
                               self.log_dir, new_session=True)
            daphne = str(Path(PYTHON).parent / "daphne")
            self.site = Proc("site", [*bounded, daphne, "-b", "127.0.0.1", "-p",
                                      str(self.port), "petcam_site.asgi:application"], env,
                             self.log_dir, new_session=True)
        else:
            self.site = Proc("site", [*bounded, PYTHON, "manage.py", "serve", "--port",
                                      str(self.port)], env, self.log_dir, new_session=True)

        def up() -> bool:
            for p in (self.site, self.worker):
                if p is not None and not p.alive():
                    raise RuntimeError(f"{p.name} exited:\n{p.log_tail()}")
            try:
                urllib.request.urlopen(self.base + "/health", timeout=2)
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        wait_for(up, 60, "the site to listen", 0.2)

    def stop_server(self) -> None:
        for p in (self.site, self.worker):
            if p is not None:
                p.stop()
        self.site = self.worker = None

    def wait_live(self, timeout: float = 90) -> dict:
        def live():
            try:
                s = self.status()
            except Exception:
                return None
            return s if s.get("live") and s.get("width") and s.get("gop_frames") else None
        return wait_for(live, timeout, "the camera to be live with a whole GOP seen", 0.5)

    # --- API -----------------------------------------------------------------------

    def request(self, method: str, path: str, body: dict | None = None,
                timeout: float = 15) -> tuple[int, dict]:
        return http_json(method, self.base + path, self.token, body, timeout)

    def status(self, attempts: int = 3) -> dict:
        """The worker's status; retried while the worker is too busy to answer in time."""
        for attempt in range(attempts):
            code, body = self.request("GET", "/api/cameras/default/")
            if code == 200 and "process" in body:
                return body
            if attempt + 1 < attempts:
                time.sleep(0.5)
        raise RuntimeError(f"status {code}: {body}")

    def worker_pid(self) -> int:
        return int(self.status()["process"]["pid"])

    # --- tear-down -----------------------------------------------------------------

    def close(self) -> None:
        self.stop_server()
        if self.simulator is not None:
            self.simulator.stop()
        for name in (self.env["PETCAM_SHM_STREAM"], self.env["PETCAM_SHM_DETECTIONS"]):
            try:
                os.unlink(Path("/dev/shm") / name.lstrip("/"))
            except OSError:
                pass
        if not self.keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def emit(result: dict, json_path: str | None, *, shown: dict | None = None,
         indent: int = 2) -> None:
    """Every benchmark's tail: its ratios, [PASS]/[MISS] per target and notes (those it
    has), the JSON on stdout (`shown`, a shorter view, if given) and in `json_path`."""
    for k, v in result.get("ratios", {}).items():
        print(f"{k}: {v}")
    for k, v in result.get("targets_met", {}).items():
        print(f"[{'PASS' if v else 'MISS'}] {k}")
    for note in result.get("notes", []):
        print(f"note: {note}")
    print(json.dumps(result if shown is None else shown, indent=indent))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=indent)


def print_table(rows: list[dict], cols: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print(" | ".join(c.rjust(widths[c]) for c in cols))
    print("-+-".join("-" * widths[c] for c in cols))
    for r in rows:
        print(" | ".join(_fmt(r.get(c)).rjust(widths[c]) for c in cols))


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)

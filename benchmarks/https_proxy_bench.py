"""What the HTTPS front costs: the same requests straight to daphne and through Caddy.

A throw-away install (benchmarks/_harness.py, embedded `manage.py serve`, PETCAM_TLS=1,
Caddy on 127.0.0.1 as its trusted proxy) records one MP4 from the simulator, then asks,
over one kept-alive connection each way, alternating direct (http://127.0.0.1:<daphne>)
and proxied (https://localhost:<caddy>, deploy/caddy/petcam.caddy with a throwaway
certificate from Caddy's CA, tests/support/caddy.py):

- static: a static file (the live page's player.js), Django's static handler;
- page: the login page (a template render, session and CSRF cookies);
- range: 64 KiB Range requests at random offsets of the recording (206);
- download: the whole recording.

Per phase and path: requests, median and p95 latency, MB/s, and the CPU seconds daphne
and Caddy spent on it (/proc/<pid>/stat). The ratios are proxied / direct medians.

    .venv/bin/python -m benchmarks.https_proxy_bench [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import random
import ssl
import statistics
import time

from benchmarks._harness import Stack, cpu_seconds, emit, loadavg, pct, print_table
from tests.support.caddy import running_caddy

PHASES = {  # name: requests per round
    "static": 200,
    "page": 100,
    "range": 100,
    "download": 10,
}
RANGE_BYTES = 64 * 1024


def connection(url: str, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    scheme, rest = url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    if scheme == "https":
        return http.client.HTTPSConnection(host, int(port), timeout=30, context=context)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def fetch(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]
          ) -> tuple[int, int]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, len(response.read())


def run_phase(conn, phase: str, n: int, token: str, rec: dict, size: int,
              rng: random.Random) -> tuple[list[float], int]:
    """n requests of the phase; (seconds per request, bytes received)."""
    auth = {"Authorization": f"Bearer {token}"}
    times, received = [], 0
    for _ in range(n):
        if phase == "static":
            path, headers, want = "/static/streaming/live/player.js", {}, 200
        elif phase == "page":
            path, headers, want = "/accounts/login/", {}, 200
        elif phase == "range":
            start = rng.randrange(0, size - RANGE_BYTES)
            path, want = rec["download_url"], 206
            headers = {**auth, "Range": f"bytes={start}-{start + RANGE_BYTES - 1}"}
        else:
            path, headers, want = rec["download_url"], auth, 200
        began = time.perf_counter()
        status, length = fetch(conn, path, headers)
        times.append(time.perf_counter() - began)
        if status != want:
            raise RuntimeError(f"{phase}: {path} answered {status}, wanted {want}")
        received += length
    return times, received


def record(stack: Stack, seconds: float) -> dict:
    code, body = stack.request("POST", "/api/cameras/default/recording/start/",
                               {"name": "bench"})
    assert code == 201, body
    time.sleep(seconds)
    code, body = stack.request("POST", "/api/cameras/default/recording/stop/", {})
    assert code == 200, body
    code, rec = stack.request("GET", f"/api/recordings/{body['id']}/")
    assert code == 200, rec
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record-seconds", type=float, default=8.0)
    parser.add_argument("--json")
    args = parser.parse_args()

    env = {"PETCAM_TLS": "1", "PETCAM_TRUSTED_PROXIES": "127.0.0.1",
           "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1"}
    with Stack(width=640, height=360, bitrate=4000, mode="inprocess",
               extra_env=env) as stack:
        stack.prepare()
        stack.start_simulator()
        stack.start_server()
        stack.wait_live()
        rec = record(stack, args.record_seconds)
        site_pid = stack.worker_pid()  # embedded: the worker runs in daphne's process
        stack.simulator.stop()  # the camera's encoder is not what is measured
        size = rec["bytes"]
        with running_caddy(stack.port, stack.tmp / "caddy") as proxy:
            context = proxy.ssl_context()
            paths = {"direct": stack.base, "caddy": proxy.base}
            conns = {name: connection(url, context) for name, url in paths.items()}
            samples = {(p, name): [] for p in PHASES for name in paths}
            volume = {(p, name): 0 for p in PHASES for name in paths}
            cpu = {(p, name): [0.0, 0.0] for p in PHASES for name in paths}
            rng = random.Random(1)
            for conn in conns.values():  # warm-up: TLS handshake, first imports
                run_phase(conn, "page", 5, stack.token, rec, size, rng)
            for _ in range(args.rounds):
                for phase, n in PHASES.items():
                    for name, conn in conns.items():
                        before = (cpu_seconds(site_pid), cpu_seconds(proxy.proc.pid))
                        times, got = run_phase(conn, phase, n, stack.token, rec, size, rng)
                        after = (cpu_seconds(site_pid), cpu_seconds(proxy.proc.pid))
                        samples[phase, name] += times
                        volume[phase, name] += got
                        cpu[phase, name][0] += after[0] - before[0]
                        cpu[phase, name][1] += after[1] - before[1]
            for conn in conns.values():
                conn.close()

    rows = []
    for (phase, name), times in samples.items():
        seconds = sum(times)
        rows.append({"phase": phase, "path": name, "requests": len(times),
                     "median_ms": round(statistics.median(times) * 1000, 3),
                     "p95_ms": round(pct(times, 95) * 1000, 3),
                     "MB_per_s": round(volume[phase, name] / seconds / 1e6, 1),
                     "daphne_cpu_s": round(cpu[phase, name][0], 2),
                     "caddy_cpu_s": round(cpu[phase, name][1], 2)})
    print(f"recording: {size} bytes; rounds: {args.rounds}; load: {loadavg()}")
    print_table(rows, ["phase", "path", "requests", "median_ms", "p95_ms", "MB_per_s",
                       "daphne_cpu_s", "caddy_cpu_s"])
    medians = {(r["phase"], r["path"]): r["median_ms"] for r in rows}
    result = {
        "benchmark": "https_proxy", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": loadavg(), "recording_bytes": size, "rounds": args.rounds, "rows": rows,
        "ratios": {f"{phase}_caddy_vs_direct_median": round(
            medians[phase, "caddy"] / medians[phase, "direct"], 2) for phase in PHASES},
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()

"""Event delivery: the simulator's detection -> phone push, MQTT message, webhook POST.

A throw-away petcam (benchmarks/_harness.py: the simulator at 1080p30 ~8 Mbit/s looping
its pre-encoded clip, the media worker and the site; `media_worker` + daphne over Redis
when Redis runs, else `manage.py serve`) with event recording on, and the three real
receivers of tests/support/event_delivery.py: a local Web Push service (VAPID checked,
payload decrypted), mosquitto with a subscriber, a loopback HTTP receiver checking the
webhook's signature. One rule (class cat, a zone on the left 30 % of the picture,
cooldown 0) makes an event each time the simulator's pet walks into the zone (once per
~6 s loop). For N events, each channel's delay from the detection (the camera's
timestamp of the triggering frame mapped to wall time, the event's `started_at`) to the
start message received; also the row stored and the start snapshot's decode (which the
start hooks wait for, up to PETCAM_EVENT_START_SNAPSHOT_WAIT_SECONDS; it depends on how
far into the GOP the detection is: `--gop`, default 14 frames as on the board). Target:
every channel's max under 2 s.

`--start-wait 0,0.75` runs one site per value, one after the other in the same run:
0 is the start going out at once with no snapshot (what the start cost before the start
snapshot), the others how much the snapshot adds and how often it is late.

Prints a table and JSON (also to --json PATH).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks._harness import Stack, emit, loadavg, pct, print_table
from tests.support.event_delivery import CHANNELS, DeliveryProbe

TARGET_MS = 2000.0
ZONE = [[0.0, 0.0], [0.3, 0.0], [0.3, 1.0], [0.0, 1.0]]


def run(args: argparse.Namespace, start_wait: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="petcam-event-bench-"))
    try:
        return _run(args, tmp, start_wait)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path, start_wait: float) -> dict:
    with DeliveryProbe(tmp) as probe, Stack(
            width=args.width, height=args.height, fps=30, bitrate=args.bitrate, gop=args.gop,
            detect_fps=args.detect_fps, mode=args.mode,
            extra_env={**probe.env(), "PETCAM_EVENT_CLASSES": "cat",
                       "PETCAM_EVENT_END_SECONDS": "1",
                       "PETCAM_EVENT_RULES_REFRESH_SECONDS": "1",
                       "PETCAM_EVENT_START_SNAPSHOT_WAIT_SECONDS": str(start_wait)}) as stack:
        stack.prepare()
        stack.start_simulator()
        stack.start_server()
        stack.wait_live()  # the worker holds a GOP: every event can have its start snapshot
        load_start = loadavg()
        rule = probe.connect(stack.request, classes=["cat"], min_confidence=0.5, zone=ZONE,
                             cooldown_seconds=0)
        events: dict[int, dict] = {}  # id -> the API's event at its start
        decode_ms: dict[int, float | None] = {}
        done: dict[int, dict[str, float]] = {}  # id -> channel -> delay ms
        deadline = time.monotonic() + args.timeout
        while len(done) < args.events and time.monotonic() < deadline:
            code, body = stack.request("GET", f"/api/events/?rule={rule}&limit=100")
            assert code == 200, body
            for ev in body["results"]:
                if ev["id"] not in events:
                    events[ev["id"]] = ev
                    # the worker's latest start decode: this event's (one start at a time)
                    decode_ms[ev["id"]] = stack.status()["event_rules"]["start_decode_ms"]
            for ev_id, ev in sorted(events.items()):
                if ev_id in done or len(done) >= args.events:
                    continue
                got = probe.deliveries(ev_id)
                if len(got) == len(CHANNELS):
                    detected = datetime.fromisoformat(ev["started_at"]).timestamp()
                    done[ev_id] = {c: (got[c].at - detected) * 1000 for c in CHANNELS}
                    done[ev_id]["stored"] = (datetime.fromisoformat(ev["stored_at"]).timestamp()
                                             - detected) * 1000
                    done[ev_id]["with_snapshot"] = all(
                        got[c].event.get("snapshot_url") for c in CHANNELS)
            time.sleep(0.2)
        load_end = loadavg()
        errors = probe.errors()
        mode = stack.mode
        late = stack.status()["event_rules"]["late_start_snapshots"]

    rows = []
    for what in (*CHANNELS, "stored"):
        values = [d[what] for d in done.values()]
        rows.append({"start_wait_s": start_wait, "what": what, "n": len(values),
                     "p50_ms": pct(values, 50),
                     "p95_ms": pct(values, 95), "max_ms": max(values, default=float("nan"))})
    decodes = [v for k, v in decode_ms.items() if k in done and v is not None]
    rows.append({"start_wait_s": start_wait, "what": "start decode", "n": len(decodes),
                 "p50_ms": pct(decodes, 50),
                 "p95_ms": pct(decodes, 95), "max_ms": max(decodes, default=float("nan"))})
    return {
        "benchmark": "event_delivery",
        "config": {"width": args.width, "height": args.height, "bitrate_kbps": args.bitrate,
                   "gop": args.gop, "detect_fps": args.detect_fps, "mode": mode,
                   "events": args.events, "start_wait_s": start_wait},
        "load_start": load_start, "load_end": load_end,
        "events_measured": len(done), "events_seen": len(events),
        "with_snapshot": sum(bool(d["with_snapshot"]) for d in done.values()),
        "late_start_snapshots": late,
        "rows": rows, "per_event": {str(k): {**v, "start_decode_ms": decode_ms.get(k)}
                                    for k, v in done.items()},
        "errors": errors,
        "targets_met": {f"wait {start_wait:g} s: {r['what']} max < {TARGET_MS:.0f} ms "
                        f"({r['max_ms']:.0f} ms)":
                        r["n"] == args.events and r["max_ms"] < TARGET_MS
                        for r in rows if r["what"] in CHANNELS},
        "notes": [f"wait {start_wait:g} s: {len(done)} of {args.events} events measured, "
                  f"{sum(bool(d['with_snapshot']) for d in done.values())} with the event's "
                  f"snapshot in every channel's start message ({late} late)",
                  *(f"receiver error: {e}" for e in errors)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.event_delivery_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10, help="events to measure")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    parser.add_argument("--gop", type=int, default=14, help="frames (the board's: 14)")
    parser.add_argument("--detect-fps", type=float, default=15)
    parser.add_argument("--mode", choices=("auto", "external", "inprocess"), default="auto")
    parser.add_argument("--start-wait", default="0,0.75",
                        help="PETCAM_EVENT_START_SNAPSHOT_WAIT_SECONDS values, comma list")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for all events")
    parser.add_argument("--json", help="also write the JSON here")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")

    try:
        waits = [float(w) for w in args.start_wait.split(",") if w.strip()]
    except ValueError:
        parser.error("--start-wait is a comma list of seconds, e.g. 0,0.75")
    if not waits or any(w < 0 for w in waits):
        parser.error("--start-wait needs at least one value, none negative")

    runs = [run(args, wait) for wait in waits]
    c = runs[0]["config"]
    rows = [row for r in runs for row in r["rows"]]
    print(f"\n{args.events} events per run, {c['width']}x{c['height']} {c['bitrate_kbps']} "
          f"kbit/s GOP {c['gop']}, mode {c['mode']}; delay from the detection, target < "
          f"{TARGET_MS:.0f} ms; load " + "; ".join(
              f"wait {r['config']['start_wait_s']:g} s: {r['load_start']} -> {r['load_end']}"
              for r in runs))
    print_table(rows, ["start_wait_s", "what", "n", "p50_ms", "p95_ms", "max_ms"])
    result = {"benchmark": "event_delivery", "runs": runs,
              "targets_met": {k: v for r in runs for k, v in r["targets_met"].items()},
              "notes": [n for r in runs for n in r["notes"]]}
    emit(result, args.json, shown={**result, "runs": [
        {k: v for k, v in r.items() if k not in ("per_event", "targets_met", "notes")}
        for r in runs]})


if __name__ == "__main__":
    main()

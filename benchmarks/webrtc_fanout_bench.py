"""WebRTC fan-out: media-worker CPU at 1080p30 8 Mbit/s for 1, 10 and 30 viewers vs re-encoding.

All in one run, against one camera simulator (its own process, pre-encoded
loop so it costs little) writing real shared memory:

- passthrough: petcam's media worker (`manage.py media_worker` + daphne over
  Redis when Redis runs on 127.0.0.1:6379, else `manage.py serve`), with
  PETCAM_SHARED_PACKETIZER=0 and =1 side by side when the worker reports a
  "shared_packetizer" key in its status (else one run, reported as n/a);
- baseline: the original Python design's path, a small standalone aiortc
  server defined in this file: FrameReader -> PyAV decode (once) -> a
  MediaStreamTrack per viewer returning av.VideoFrames -> aiortc's own
  H264Encoder encodes per viewer (libx264 as aiortc configures it: default
  preset, zerolatency, Baseline, bitrate 1-3 Mbit/s steered by REMB).

Viewers are receive-only aiortc peers in separate processes that count
frames without decoding (see _rtc_clients.py: they send one REMB a second
like a browser, and send PLIs as aiortc does when its jitter buffer gives up
on a gap; each PLI makes petcam replay the cached GOP to that viewer, so
`--client-pli off` shows the server without that path). Server CPU is
utime+stime of the server process from /proc/<pid>/stat over the window.
Reported: per-viewer received fps (frames/s at the clients), frames dropped
(the worker's per-sink drop counters, and the client-side shortfall against
the camera's fps), worker CPU (% of one core), RSS/fds/tasks, client CPU and
load, and the ratios against the targets. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from fractions import Fraction

from benchmarks._harness import (
    MAX_LIFETIME_S,
    PYTHON,
    Stack,
    cpu_seconds,
    emit,
    loadavg,
    print_table,
    rss_mb,
)
from benchmarks._rtc_clients import ClientPool, window
from tests.support.processes import Proc, pick_free_port

TARGET_CPU_10 = 35.0  # % of one core with 10 viewers
TARGET_RATIO_1 = 8.0  # baseline CPU / passthrough CPU with 1 viewer
TARGET_DROP_30 = 1.0  # % of frames dropped with 30 viewers


# --- the re-encoding baseline server (runs as its own process) -----------------------------

def baseline_server(segment: str, port: int) -> None:
    """FrameReader -> PyAV decode once -> per-viewer aiortc H264Encoder (what aiortc does
    with a track that returns av.VideoFrames). Signaling: one JSON line per TCP connection."""
    import logging

    import av
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack

    from streaming.media.shm.stream_reader import FrameReader

    logging.basicConfig(level=logging.ERROR)
    time_base = Fraction(1, 90_000)

    class DecodedSource:
        """Decodes each access unit once (reader thread); tracks take the newest picture."""

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self.loop = loop
            self.frame = None
            self.seq = 0
            self.decoded = 0
            self.decode_s = 0.0
            self.errors = 0
            self._event = asyncio.Event()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

        def _run(self) -> None:
            codec = av.CodecContext.create("h264", "r")
            reader = FrameReader(segment)
            t_first = None
            for raw in reader.frames(self._stop.is_set):
                t0 = time.perf_counter()
                try:
                    frames = codec.decode(av.Packet(raw.data))
                except av.FFmpegError:
                    self.errors += 1
                    continue
                self.decode_s += time.perf_counter() - t0
                ts = raw.header.timestamp
                for frame in frames:
                    t_first = ts if t_first is None else t_first
                    frame.pts = round((ts - t_first) * 90_000)
                    frame.time_base = time_base
                    self.decoded += 1
                    self.loop.call_soon_threadsafe(self._publish, frame)
            reader.close()

        def _publish(self, frame) -> None:
            self.frame = frame
            self.seq += 1
            event, self._event = self._event, asyncio.Event()
            event.set()

        async def next(self, after: int):
            while self.seq <= after:
                await self._event.wait()
            return self.frame, self.seq

        def stop(self) -> None:
            self._stop.set()

    class DecodedTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self, source: DecodedSource) -> None:
            super().__init__()
            self.source = source
            self.seq = 0
            self.sent = 0

        async def recv(self):
            frame, self.seq = await self.source.next(self.seq)
            self.sent += 1
            return frame

    async def main() -> None:
        source = DecodedSource(asyncio.get_running_loop())
        pcs: list[tuple[RTCPeerConnection, DecodedTrack]] = []
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType in ("video/H264", "video/rtx")]

        async def handle(reader, writer) -> None:
            try:
                msg = json.loads(await reader.readline())
                if msg["op"] == "offer":
                    pc = RTCPeerConnection()
                    track = DecodedTrack(source)
                    pc.addTransceiver(track, direction="sendonly").setCodecPreferences(h264)
                    await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                    pcs.append((pc, track))
                    reply = {"type": "answer", "sdp": pc.localDescription.sdp,
                             "session": f"baseline-{len(pcs)}"}
                elif msg["op"] == "stats":
                    reply = {"decoded": source.decoded, "decode_errors": source.errors,
                             "decode_ms_mean": round(1000 * source.decode_s
                                                     / max(source.decoded, 1), 2),
                             "viewers": sum(pc.connectionState == "connected"
                                            for pc, _ in pcs),
                             "sent": [t.sent for pc, t in pcs
                                      if pc.connectionState == "connected"]}
                elif msg["op"] == "close":
                    await asyncio.gather(*(pc.close() for pc, _ in pcs))
                    pcs.clear()
                    reply = {"closed": True}
                else:
                    reply = {"error": "unknown op"}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", port)
        stop = asyncio.Event()
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with server:
            try:  # bounded even if the benchmark dies without stopping it
                await asyncio.wait_for(stop.wait(), MAX_LIFETIME_S)
            except TimeoutError:
                pass
        source.stop()
        await asyncio.gather(*(pc.close() for pc, _ in pcs), return_exceptions=True)

    asyncio.run(main())


def baseline_rpc(port: int, op: str) -> dict:
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(json.dumps({"op": op}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


# --- measuring ---------------------------------------------------------------------------

def session_counters(status: dict) -> dict[str, dict]:
    return {s["session"]: s for s in status.get("viewers", {}).get("sessions", [])}


def measure_passthrough(stack: Stack, pool: ClientPool, n: int, args, label: str) -> dict:
    row = {"path": "passthrough", "packetizer": label, "viewers": n}
    if n:
        results = pool.connect(n, args.concurrency)
        errors = [r["error"] for r in results if r["error"]]
        row["connected"] = n - len(errors)
        if errors:
            row["connect_errors"] = errors[:3]
        row["connect_ms_p50"] = _median([r["connect_ms"] for r in results if r["connect_ms"]])
    else:
        row["connected"] = 0
    time.sleep(args.warmup)
    pid = stack.worker_pid()
    s0, c0, w0 = stack.status(), cpu_seconds(pid), time.monotonic()
    b = pool.snapshot()
    load0, udp0 = loadavg(), udp_rcvbuf_errors()
    time.sleep(args.seconds)
    a = pool.snapshot()
    s1, c1, w1 = stack.status(), cpu_seconds(pid), time.monotonic()
    dt = w1 - w0
    cam_frames = s1["reader"]["frames_read"] - s0["reader"]["frames_read"]
    cam_fps = cam_frames / dt
    before, after = session_counters(s0), session_counters(s1)
    dropped = sum(after[k]["dropped"] - before[k]["dropped"] for k in after if k in before)
    overflows = sum(after[k]["overflows"] - before[k]["overflows"] for k in after if k in before)
    kf = sum(after[k]["keyframe_requests"] - before[k]["keyframe_requests"]
             for k in after if k in before)
    sent = sum(after[k]["frames_sent"] - before[k]["frames_sent"] for k in after if k in before)
    w = window(b, a)
    fps = [v["fps"] for v in w["viewers"]]
    proc = s1["process"]
    row.update({
        "worker_cpu_pct": round(100 * (c1 - c0) / dt, 1),
        "cpu_per_viewer_pct": round(100 * (c1 - c0) / dt / n, 2) if n else None,
        "camera_fps": round(cam_fps, 2),
        "server_sent_fps": round(sent / n / dt, 2) if n else None,
        # Worker CPU per access unit sent to one viewer (idle cost included): comparable
        # across viewer counts even when a starved run sent fewer frames.
        "cpu_us_per_viewer_frame": round(1e6 * (c1 - c0) / sent, 1) if sent else None,
        # Sent less than the camera wrote, without dropping: the sinks' queues grew (lag).
        "server_shortfall_pct": (round(100 * max(0.0, 1 - sent / n / dt / cam_fps), 2)
                                 if n and cam_fps else None),
        "fps_min": round(min(fps), 2) if fps else None,
        "fps_mean": round(sum(fps) / len(fps), 2) if fps else None,
        "client_shortfall_pct": (round(100 * max(0.0, 1 - (sum(fps) / len(fps)) / cam_fps), 2)
                                 if fps and cam_fps else None),
        "udp_rcvbuf_errors": udp_rcvbuf_errors() - udp0,
        "sink_dropped": dropped,
        "sink_overflows": overflows,
        "dropped_pct": round(100 * dropped / (n * cam_frames), 3) if n and cam_frames else 0.0,
        "keyframe_requests": kf,
        "client_plis": w["client_plis"],
        "rss_mb": proc["rss_mb"],
        "open_fds": proc["open_fds"],
        "asyncio_tasks": proc["asyncio_tasks"],
        "client_cpu_pct": round(w["client_cpu_pct"], 1),
        "sim_cpu_pct": None,
        "load": f"{load0} -> {loadavg()}",
        "window_s": round(dt, 1),
    })
    return row


def measure_baseline(pid: int, port: int, pool: ClientPool, n: int, args,
                     cam_fps: float) -> dict:
    row = {"path": "decode+re-encode", "packetizer": "n/a", "viewers": n}
    results = pool.connect(n, args.concurrency)
    errors = [r["error"] for r in results if r["error"]]
    row["connected"] = n - len(errors)
    if errors:
        row["connect_errors"] = errors[:3]
    row["connect_ms_p50"] = _median([r["connect_ms"] for r in results if r["connect_ms"]])
    time.sleep(args.warmup)
    st0, c0, w0 = baseline_rpc(port, "stats"), cpu_seconds(pid), time.monotonic()
    b = pool.snapshot()
    load0, udp0 = loadavg(), udp_rcvbuf_errors()
    time.sleep(args.seconds)
    a = pool.snapshot()
    st1, c1, w1 = baseline_rpc(port, "stats"), cpu_seconds(pid), time.monotonic()
    dt = w1 - w0
    w = window(b, a)
    fps = [v["fps"] for v in w["viewers"]]
    row.update({
        "worker_cpu_pct": round(100 * (c1 - c0) / dt, 1),
        "cpu_per_viewer_pct": round(100 * (c1 - c0) / dt / n, 2),
        "camera_fps": round(cam_fps, 2),
        "decoded_fps": round((st1["decoded"] - st0["decoded"]) / dt, 2),
        "decode_ms_mean": st1["decode_ms_mean"],
        "fps_min": round(min(fps), 2) if fps else None,
        "fps_mean": round(sum(fps) / len(fps), 2) if fps else None,
        "client_shortfall_pct": (round(100 * max(0.0, 1 - (sum(fps) / len(fps)) / cam_fps), 2)
                                 if fps and cam_fps else None),
        "udp_rcvbuf_errors": udp_rcvbuf_errors() - udp0,
        "received_kbps_mean": (round(sum(v["bytes"] for v in w["viewers"]) * 8 / 1000 / dt
                                     / len(fps), 0) if fps else None),
        "sink_dropped": None,
        "dropped_pct": None,
        "rss_mb": round(rss_mb(pid), 1),
        "client_cpu_pct": round(w["client_cpu_pct"], 1),
        "load": f"{load0} -> {loadavg()}",
        "window_s": round(dt, 1),
    })
    return row


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped for full receive buffers (whole machine)."""
    with open("/proc/net/snmp") as f:
        udp = [line.split() for line in f if line.startswith("Udp:")]
    return int(udp[1][udp[0].index("RcvbufErrors")])


def _median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def wait_viewers_gone(stack: Stack, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if stack.status()["viewers"]["count"] == 0:
                return
        except RuntimeError:
            pass
        time.sleep(0.5)


def run(args) -> dict:
    viewer_counts = [int(x) for x in args.viewers.split(",") if x != ""]
    baseline_counts = [int(x) for x in args.baseline_viewers.split(",") if x != ""]
    rows: list[dict] = []
    notes: list[str] = []
    stack = Stack(width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
                  mode=args.mode, max_viewers=max(viewer_counts + [1]), keep_logs=args.keep_logs)
    pool = None
    baseline = None
    try:
        stack.prepare()
        sim = stack.start_simulator()
        settings = {"both": ["0", "1"], "on": ["1"], "off": ["0"], "default": [None]}[
            args.packetizer]
        senders = {"both": ["aiortc", "lean"], "lean": ["lean"], "aiortc": ["aiortc"]}[
            args.sender]
        cam_fps = float(args.fps)
        pacings = {"both": ["0", "1"], "on": ["1"], "off": ["0"]}[args.pacing]
        det_pacings = {"both": ["0", "1"], "on": ["1"], "off": ["0"]}[args.detections_pacing]
        relaxes = {"both": ["0", "1"], "on": ["1"], "off": ["0"]}[args.idle_relax]
        batches = {"both": ["0", "1"], "on": ["1"], "off": ["0"]}[args.batch_send]
        configs = [(x, y, z, d, r, b) for x in senders for y in settings for z in pacings
                   for d in det_pacings for r in relaxes for b in batches]
        # Rounds repeat the settings in turn (A B A B ...): a load that drifts (other
        # jobs on the machine) then weighs on both sides of a ratio alike.
        for round_no, (sender, setting, pacing, det_pacing, relax, batch) in [
                (i, c) for i in range(args.rounds) for c in configs]:
            extra = {} if setting is None else {"PETCAM_SHARED_PACKETIZER": setting}
            extra["PETCAM_LEAN_SENDER"] = "1" if sender == "lean" else "0"
            extra["PETCAM_PACING"] = pacing
            extra["PETCAM_DETECTIONS_PACING"] = det_pacing
            extra["PETCAM_IDLE_RELAX"] = relax
            extra["PETCAM_BATCH_SEND"] = batch
            stack.start_server(extra)
            status = stack.wait_live()
            cam_fps = status["fps"] or cam_fps
            reported = status.get("viewers", {}).get("shared_packetizer")
            label = "n/a" if reported is None else ("on" if reported else "off")
            if sender == "aiortc":
                label += " +aiortc loop"  # aiortc's per-packet RTP loop, not petcam's lean one
            elif pacing == "0":
                label += " unpaced"  # IDRs leave as one burst (PETCAM_PACING=0)
            if det_pacing == "0":
                label += " det-poll 2ms"  # detections reader's fixed poll
            if relax == "0":
                label += " never relaxed"  # reader and detections poll as if watched
            if batch == "0" and sender == "lean":
                label += " sendto"  # one sendto per packet, not a sendmmsg per burst
            if setting is not None and reported is None:
                notes.append("the worker status has no 'shared_packetizer' key: "
                             "PETCAM_SHARED_PACKETIZER has no effect yet; one run only")
            pool = ClientPool({"kind": "http", "base": stack.base, "token": stack.token},
                              args.client_procs, send_pli=args.client_pli == "on")
            for n in [0, *viewer_counts]:
                sim0 = cpu_seconds(sim.pid), time.monotonic()
                try:
                    row = measure_passthrough(stack, pool, n, args, label)
                except RuntimeError as exc:  # e.g. the worker too busy to answer its status
                    row = {"path": "passthrough", "packetizer": label, "viewers": n,
                           "worker_cpu_pct": None, "error": str(exc)[:300]}
                    notes.append(f"passthrough {label} {n} viewers: {exc}"[:300])
                sim1 = cpu_seconds(sim.pid), time.monotonic()
                row["round"] = round_no
                row["sim_cpu_pct"] = round(100 * (sim1[0] - sim0[0]) / (sim1[1] - sim0[1]), 1)
                rows.append(row)
                _progress(row)
                pool.close_viewers()
                wait_viewers_gone(stack)
            pool.shutdown()
            pool = None
            stack.stop_server()
            if reported is None and setting is not None:
                break
        if baseline_counts:
            port = pick_free_port()
            baseline = Proc("baseline", [PYTHON, "-m", "benchmarks.webrtc_fanout_bench",
                                         "--baseline-server", "--segment", stack.segment,
                                         "--port", str(port)],
                            stack.env, stack.log_dir, new_session=True)
            _wait_port(port, baseline)
            pool = ClientPool({"kind": "tcp", "port": port}, args.client_procs,
                              send_pli=args.client_pli == "on")
            for n in baseline_counts:
                row = measure_baseline(baseline.pid, port, pool, n, args, cam_fps)
                rows.append(row)
                _progress(row)
                pool.close_viewers()
                baseline_rpc(port, "close")
                time.sleep(1)
    finally:
        if pool is not None:
            pool.shutdown()
        if baseline is not None:
            baseline.stop()
        stack.close()
    return report(rows, notes, args, stack.mode)


def _wait_port(port: int, proc: Proc, timeout: float = 30) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"baseline server exited:\n{proc.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("baseline server did not listen")


def _progress(row: dict) -> None:
    print(f"  {row['path']:<16} packetizer={row['packetizer']:<3} viewers={row['viewers']:>2}: "
          f"cpu {row['worker_cpu_pct']}% fps min {row.get('fps_min')} "
          f"dropped {row.get('sink_dropped')} load {row.get('load')}", file=sys.stderr,
          flush=True)


def report(rows: list[dict], notes: list[str], args, mode: str) -> dict:
    def find(path, n, packetizer=None):
        for r in rows:
            if r["path"] == path and r["viewers"] == n and (packetizer is None
                                                            or r["packetizer"] == packetizer):
                return r
        return None

    base1 = find("decode+re-encode", 1)
    ratios, targets = {}, {}
    for label in sorted({r["packetizer"] for r in rows if r["path"] == "passthrough"}):
        p1, p10, p30 = (find("passthrough", n, label) for n in (1, 10, 30))
        key = f"packetizer_{label}"
        if base1 and p1 and p1.get("worker_cpu_pct") is not None:
            ratio = base1["worker_cpu_pct"] / max(p1["worker_cpu_pct"], 0.1)
            # The baseline may not reach the camera's fps: compare CPU per delivered frame too.
            per_frame = ((base1["worker_cpu_pct"] / max(base1["fps_mean"] or 0.01, 0.01))
                         / (p1["worker_cpu_pct"] / max(p1["fps_mean"] or 0.01, 0.01)))
            ratios[f"{key}: baseline_cpu_over_passthrough_1_viewer"] = round(ratio, 1)
            ratios[f"{key}: baseline_cpu_per_delivered_frame_over_passthrough_1_viewer"] = round(
                per_frame, 1)
            targets[f"{key}: >= {TARGET_RATIO_1:g}x less CPU than baseline at 1 viewer"] = (
                ratio >= TARGET_RATIO_1)
        if p10 and p10.get("worker_cpu_pct") is not None:
            targets[f"{key}: 10 viewers < {TARGET_CPU_10:g}% of one core "
                    f"(got {p10['worker_cpu_pct']}%)"] = p10["worker_cpu_pct"] < TARGET_CPU_10
            ratios[f"{key}: worker_rss_mb_at_10_viewers"] = p10["rss_mb"]
        if p30 and p30.get("worker_cpu_pct") is not None:
            worst = max(p30["dropped_pct"], p30["server_shortfall_pct"] or 0.0,
                        p30["client_shortfall_pct"] or 0.0)
            targets[f"{key}: 30 viewers < {TARGET_DROP_30:g}% frames dropped "
                    f"(got {worst}%)"] = worst < TARGET_DROP_30
    for n in (1, 10, 30):
        lean, loop = find("passthrough", n, "on"), find("passthrough", n, "on +aiortc loop")
        if lean and loop and lean.get("worker_cpu_pct") and loop.get("worker_cpu_pct"):
            ratios[f"aiortc_loop_over_lean_sender_cpu_{n}_viewers"] = round(
                loop["worker_cpu_pct"] / max(lean["worker_cpu_pct"], 0.1), 2)
    for n in sorted({r["viewers"] for r in rows if r["viewers"]}):
        # Per round (the two settings measured next to each other), then the median.
        per_round = []
        for r in {row.get("round", 0) for row in rows}:
            on = [x for x in rows if x.get("round", 0) == r and x["path"] == "passthrough"
                  and x["viewers"] == n and x["packetizer"] == "on"]
            off = [x for x in rows if x.get("round", 0) == r and x["path"] == "passthrough"
                   and x["viewers"] == n and x["packetizer"] == "on sendto"]
            if on and off and on[0].get("worker_cpu_pct") and off[0].get("worker_cpu_pct"):
                per_round.append(off[0]["worker_cpu_pct"] / max(on[0]["worker_cpu_pct"], 0.1))
        if per_round:
            ratios[f"sendto_over_batch_send_cpu_{n}_viewers"] = round(
                statistics.median(per_round), 2)
            ratios[f"sendto_over_batch_send_cpu_{n}_viewers_per_round"] = [
                round(x, 2) for x in per_round]
    for n in (10, 30):
        on, off = find("passthrough", n, "on"), find("passthrough", n, "off")
        if on and off and on.get("worker_cpu_pct") and off.get("worker_cpu_pct"):
            ratios[f"packetizer_off_over_on_cpu_{n}_viewers"] = round(
                off["worker_cpu_pct"] / max(on["worker_cpu_pct"], 0.1), 2)
    return {
        "benchmark": "webrtc_fanout",
        "config": {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                   "bitrate_kbps": args.bitrate, "gop": 2 * args.fps, "window_s": args.seconds,
                   "warmup_s": args.warmup, "worker_mode": mode,
                   "client_processes": args.client_procs, "client_pli": args.client_pli,
                   "cpus": os.cpu_count()},
        "rows": rows,
        "ratios": ratios,
        "targets_met": targets,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.webrtc_fanout_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--viewers", default="1,10,30", help="passthrough viewer counts")
    ap.add_argument("--baseline-viewers", default="1,10",
                    help="re-encoding baseline viewer counts ('' to skip)")
    ap.add_argument("--packetizer", choices=["both", "on", "off", "default"], default="both",
                    help="PETCAM_SHARED_PACKETIZER settings to run side by side")
    ap.add_argument("--sender", choices=["lean", "aiortc", "both"], default="lean",
                    help="PETCAM_LEAN_SENDER: petcam's per-frame RTP loop, aiortc's "
                         "per-packet one, or both side by side (aiortc's first)")
    ap.add_argument("--idle-relax", choices=["on", "off", "both"], default="on",
                    help="PETCAM_IDLE_RELAX: with no viewer the shm reader polls once a "
                         "frame; with no detector the detections poll backs off")
    ap.add_argument("--detections-pacing", choices=["on", "off", "both"], default="on",
                    help="PETCAM_DETECTIONS_PACING: the detections reader sleeps until the "
                    "next result is due, or polls every 2 ms; 'both' runs the fixed poll first")
    ap.add_argument("--pacing", choices=["on", "off", "both"], default="on",
                    help="PETCAM_PACING of the lean sender (IDR bursts spread over half a "
                         "frame interval); 'both' runs unpaced first")
    ap.add_argument("--batch-send", choices=["on", "off", "both"], default="on",
                    help="PETCAM_BATCH_SEND of the lean sender (a burst per sendmmsg, or a "
                         "sendto per packet); 'both' runs per-packet sendto first")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the settings compared this many times, in turn "
                         "(ratios: per round, then the median)")
    ap.add_argument("--seconds", type=float, default=10, help="measurement window per row")
    ap.add_argument("--warmup", type=float, default=3, help="seconds after connecting")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s")
    ap.add_argument("--mode", choices=["auto", "external", "inprocess"], default="auto",
                    help="external = media_worker + daphne over Redis (auto if Redis runs)")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--client-pli", choices=["on", "off"], default="on",
                    help="off: viewers count their PLIs but do not send them (isolates the "
                         "server's keyframe-request path: each PLI replays the cached GOP)")
    ap.add_argument("--concurrency", type=int, default=4, help="offers in flight per process")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    ap.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--segment", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_server:
        baseline_server(args.segment, args.port)
        return
    result = run(args)
    cols = ["path", "packetizer", "viewers", "connected", "worker_cpu_pct", "cpu_per_viewer_pct",
            "cpu_us_per_viewer_frame", "server_sent_fps", "server_shortfall_pct", "fps_min",
            "fps_mean", "client_shortfall_pct", "sink_dropped", "dropped_pct", "keyframe_requests",
            "client_plis", "udp_rcvbuf_errors", "rss_mb", "client_cpu_pct", "sim_cpu_pct", "load"]
    print_table(result["rows"], cols)
    emit(result, args.json)


if __name__ == "__main__":
    main()

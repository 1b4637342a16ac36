"""petcam vs Janus fan-out, side by side in one run: same clip, same lean receivers.

One H.264 clip is encoded once (the camera simulator's own loop encoder, to an
Annex-B file) and fed to both servers at its frame rate:

- petcam: the embedded site (`manage.py serve`, viewers' RTCP silence timeout
  30 s) reading the real shared memory, written by the simulator's streaming
  loop replaying the clip's access units (a `CameraSimulator` whose loop comes
  from the file);
- Janus 1.1.2 (Debian package `janus`, installed here with apt-get if
  /usr/bin/janus is missing), its streaming plugin with one RTP mountpoint fed
  by `ffmpeg -re -stream_loop -1 ... -c copy -f rtp` of the same file (payload
  1200 bytes like petcam's; its UDP output paced at `--feed-mbits`, see
  FEED_MBITS), signaling over its HTTP API on 127.0.0.1, config files in a
  temp dir, no STUN.

ICE: host candidates only, no STUN/TURN on either side; the candidates are this
machine's own addresses, so every packet goes through the kernel's loopback
device. (127.0.0.1 itself cannot be used: aioice leaves it out, and Janus's
ICE with `ice_enforce_list = "lo"` or a 127.0.0.1 client candidate fails.)

Each server runs pinned to one core (`--server-core`), started from a thread
pinned there; the feeders, the receivers and this process run on the other
(`--client-core`). Viewer counts alternate petcam / Janus per count, both
servers up all along (the idle one's CPU is printed too).

Receivers: aiortc peers (ICE, DTLS-SRTP, RTCP) whose RTP never reaches
aiortc: the ICE-selected socket is drained in a loop and each SRTP packet is
counted from its clear header (sequence gaps, marker bits, payload bytes), one
in 64 decrypted as a check (`_rtc_clients.RtpCounter`); they send a receiver
report a second, no PLI, and NACKs only with `--receiver-nack`. Several per
process. Whether they keep up: their own CPU (% of the client core) and the
kernel's UDP `RcvbufErrors` (/proc/net/snmp, whole machine) over each window.

IDR pacing (`--pacing both`: always paced and unpaced; `--pacing all`: auto, the
default, as well, whose viewers are paced once they NACK, so with
`--receiver-nack`): petcams each with its own embedded site and camera replaying
the clip, side by side in the run; with
`--rcvbuf 212992` (the kernel's default buffer) and `--read-every-ms 10`
(receivers that read only that often, like a phone's busy receive thread,
SCHED_FIFO with `--receiver-fifo` so they really do on a loaded machine) the
drops at their sockets show what a burst does to a small buffer.

Batched sends (`--batch-send both`): a second petcam with PETCAM_BATCH_SEND=0 (one
sendto per packet rather than a sendmmsg per burst), likewise side by side.

Per row: server CPU (% of one core), RSS, per viewer: complete frames / frames
the source sent in the window (fps x window), payload bitrate vs the clip's,
packet loss (sequence gaps); CPU ratio petcam / Janus per count; targets of
issue 13. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

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
from benchmarks.webrtc_fanout_bench import udp_rcvbuf_errors, wait_viewers_gone
from tests.support.processes import Proc, pick_free_port, wait_for

JANUS = "/usr/bin/janus"
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
MOUNTPOINT = 1
PAYLOAD_PT = 96
RTP_PACKET = 1212  # ffmpeg's RTP packet size: a 12-byte header + petcam's 1200-byte payload
# ffmpeg's UDP output paced at this rate (Mbit/s): an IDR leaves over ~20 ms, not as one
# burst that overflows Janus's input socket (default 208 KiB) whenever Janus is not on
# the CPU at that moment; petcam's camera input is shared memory, which cannot overflow.
FEED_MBITS = 50.0
TARGET_RATIO = 1.0  # petcam CPU / Janus CPU at 10 and 30 viewers
TARGET_FRAMES = 99.0  # % of frames every viewer gets at 30 and 50 viewers


# --- the clip and the camera that replays it ---------------------------------------------

def encode_clip(path: Path, args) -> dict:
    """The simulator's loop (its scene and encoder), written as one Annex-B file plus the
    access units' sizes (the camera replays them one per slot)."""
    from streaming.simulator.runner import CameraSimulator, SimulatorConfig

    sim = CameraSimulator(SimulatorConfig(
        width=args.width, height=args.height, fps=args.fps, bitrate_kbps=args.bitrate,
        gop=args.gop, encode="loop", loop_seconds=args.clip_seconds, detect_fps=0,
        stream_segment=f"/petcam_clip_{os.getpid()}_s",
        detections_segment=f"/petcam_clip_{os.getpid()}_d"))
    sim._prepare()  # encodes the loop without opening any segment
    units = [u.data for u in sim._loop]
    path.write_bytes(b"".join(units))
    sizes = [len(u) for u in units]
    Path(f"{path}.json").write_text(json.dumps({
        "sizes": sizes, "keyframes": [u.keyframe for u in sim._loop],
        "pictures": [u.picture_number for u in sim._loop]}))
    # ffmpeg cannot seek a raw H.264 stream to loop it: the same bytes in MP4 (in-band
    # SPS/PPS stay in the samples).
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-framerate",
                    str(args.fps), "-f", "h264", "-i", str(path), "-c", "copy",
                    str(path.with_suffix(".mp4"))], check=True)
    seconds = len(units) / args.fps
    return {"frames": len(units), "seconds": round(seconds, 2),
            "kbps": round(sum(sizes) * 8 / seconds / 1000, 1),
            "idr_bytes_max": max(s for s, u in zip(sizes, sim._loop, strict=True) if u.keyframe)}


def camera_main(clip: str, stream: str, detections: str, fps: int) -> None:
    """The simulator's streaming loop (pacing, FrameWriter, re-anchoring) with its loop of
    access units read from the clip file instead of encoded."""
    import logging

    from streaming.simulator.encoder import EncodedFrame
    from streaming.simulator.runner import CameraSimulator, SimulatorConfig

    logging.basicConfig(level=logging.INFO)
    meta = json.loads(Path(f"{clip}.json").read_text())
    data = Path(clip).read_bytes()

    class ClipCamera(CameraSimulator):
        def _prepare(self) -> None:
            offset = 0
            for size, key, pic in zip(meta["sizes"], meta["keyframes"], meta["pictures"],
                                      strict=True):
                self._loop.append(EncodedFrame(data[offset:offset + size], key, pic, 0))
                offset += size
            self.stats.mode = "loop"
            self.stats.loop_frames = len(self._loop)

    ClipCamera(SimulatorConfig(stream_segment=stream, detections_segment=detections,
                               width=meta["width"], height=meta["height"], fps=fps, detect_fps=0,
                               duration=MAX_LIFETIME_S, encode="loop")).run(
        handle_signals=True)


# --- Janus ---------------------------------------------------------------------------------

def ensure_janus(notes: list[str]) -> None:
    if Path(JANUS).exists():
        return
    print("installing Janus from Debian (apt-get install -y janus) ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "janus"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    notes.append("Janus installed by this run (apt-get install -y janus)")


def janus_version() -> str:
    out = subprocess.run([JANUS, "--version"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines()
                 if line.startswith("Janus version")), "?")


class Janus:
    """Janus with only the streaming plugin and the HTTP transport, config in `root`."""

    def __init__(self, root: Path, log_dir: Path, rtp_port: int) -> None:
        self.root = root
        self.http_port = pick_free_port()
        self.base = f"http://127.0.0.1:{self.http_port}/janus"
        conf, plugins, transports = root / "conf", root / "plugins", root / "transports"
        for d in (conf, plugins, transports, root / "none"):
            d.mkdir(parents=True, exist_ok=True)
        # Only what this benchmark uses is loaded: one plugin, one transport.
        (plugins / "libjanus_streaming.so").symlink_to(JANUS_LIB / "plugins/libjanus_streaming.so")
        (transports / "libjanus_http.so").symlink_to(JANUS_LIB / "transports/libjanus_http.so")
        (conf / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{conf}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{root / 'none'}"
    loggers_folder = "{root / 'none'}"
    debug_level = 3
    session_timeout = 0
}}
media: {{
    rtp_port_range = "40000-60000"
}}
nat: {{
    ignore_mdns = true
}}
""")
        (conf / "janus.transport.http.jcfg").write_text(f"""general: {{
    base_path = "/janus"
    http = true
    port = {self.http_port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
}}
""")
        (conf / "janus.plugin.streaming.jcfg").write_text(f"""general: {{
}}
petcam-clip: {{
    type = "rtp"
    id = {MOUNTPOINT}
    description = "petcam benchmark clip"
    media = (
        {{
            type = "video"
            mid = "v"
            port = {rtp_port}
            iface = "127.0.0.1"
            pt = {PAYLOAD_PT}
            codec = "h264"
            fmtp = "profile-level-id=42e01f;packetization-mode=1"
        }}
    )
}}
""")
        self.proc = Proc("janus", ["timeout", "-k", "10", str(MAX_LIFETIME_S), JANUS,
                                   "-F", str(conf), "-C", str(conf / "janus.jcfg"),
                                   "-P", str(plugins), "-o"], os.environ.copy(), log_dir,
                         new_session=True)

        def up() -> bool:
            if not self.proc.alive():
                raise RuntimeError(f"janus exited:\n{self.proc.log_tail()}")
            try:
                urllib.request.urlopen(self.base + "/info", timeout=2).read()
            except OSError:
                return False
            return True
        wait_for(up, 30, "Janus to listen", 0.2)
        self.pid = _child_pid(self.proc.pid, "janus")

    def stop(self) -> None:
        self.proc.stop()


RMEM = ("/proc/sys/net/core/rmem_default", "/proc/sys/net/core/rmem_max")


@contextlib.contextmanager
def socket_buffers_by_default(size: int):
    """Sockets made inside get a `size`-byte receive buffer unless they ask for one
    (net.core.rmem_default, raised with rmem_max if that is lower; both put back on
    leaving). For Janus's streaming input: it asks for none, so it gets the kernel's
    default, 208 KiB, less than one IDR of the clip. The window is Janus's start only
    (its mountpoint socket is made then), so other sockets on the machine are not
    affected beyond those seconds. `size` 0: nothing changed."""
    if not size:
        yield None
        return
    saved = [int(Path(p).read_text()) for p in RMEM]
    try:
        Path(RMEM[1]).write_text(str(max(size, saved[1])))
        Path(RMEM[0]).write_text(str(size))
    except OSError as exc:  # not root, or /proc/sys read-only in a container
        yield f"could not raise net.core.rmem_default to {size}: {exc}"
        return
    try:
        yield None
    finally:
        Path(RMEM[0]).write_text(str(saved[0]))
        Path(RMEM[1]).write_text(str(saved[1]))


def udp_receive_buffer(port: int) -> int | None:
    """The receive buffer (bytes, as the kernel counts them: twice what was asked) of
    the UDP socket bound to `port` on 127.0.0.1, from `ss`; None if not found."""
    try:
        out = subprocess.run(["ss", "-uanmH", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\brb(\d+)", out)
    return int(found.group(1)) if found else None


def _child_pid(wrapper: int, name: str) -> int:
    """The pid of `name` under GNU timeout's wrapper process (the one to measure)."""
    for _ in range(50):
        for task in Path(f"/proc/{wrapper}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    if Path(f"/proc/{child}/comm").read_text().strip().startswith(name):
                        return int(child)
        time.sleep(0.1)
    raise RuntimeError(f"no {name} process under {wrapper}")


# --- pinning -------------------------------------------------------------------------------

def pinned(core: int, start):
    """Run start() in a thread pinned to `core`: the processes it starts inherit the pin."""
    out: dict = {}

    def run() -> None:
        os.sched_setaffinity(0, {core})
        try:
            out["value"] = start()
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def prioritize_all_threads(pid: int, nice: int = 0, fifo: int = 0) -> None:
    """Every thread the process has now (setpriority/sched_setscheduler are per thread on
    Linux): a nice value, or SCHED_FIFO at priority `fifo` (0: leave the policy)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if fifo:
                os.sched_setscheduler(int(task.name), os.SCHED_FIFO, os.sched_param(fifo))
            elif nice:
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def pin_all_threads(pid: int, core: int) -> None:
    """Threads a process already has do not follow a later pin of its main thread."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), {core})


# --- measuring -----------------------------------------------------------------------------

def udp_drops(pids: list[int]) -> int:
    """Datagrams the kernel dropped at these processes' own UDP sockets (the `drops`
    column of /proc/net/udp): tells a server's input socket from the receivers'."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    total = 0
    for proto in ("udp", "udp6"):
        with open(f"/proc/net/{proto}") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[9] in inodes:
                    total += int(parts[12])
    return total


def measure(name: str, pid: int, other_pids: list[int], pool: ClientPool, n: int, args,
            clip: dict, source_frames=None) -> dict:
    row: dict = {"server": name, "viewers": n}
    if n:
        results = pool.connect(n, args.concurrency)
        errors = [r["error"] for r in results if r["error"]]
        row["connected"] = n - len(errors)
        if errors:
            row["connect_errors"] = errors[:3]
    else:
        row["connected"] = 0
    if args.receiver_nice or args.receiver_fifo:
        for proc in pool.procs:
            prioritize_all_threads(proc.pid, args.receiver_nice, args.receiver_fifo)
    time.sleep(args.warmup)
    load0 = loadavg()
    b = pool.snapshot()
    udp0 = udp_rcvbuf_errors()
    clients = [p.pid for p in pool.procs]
    drops0 = udp_drops([pid]), udp_drops(clients)
    f0 = source_frames() if source_frames else None
    c0, o0, t0 = cpu_seconds(pid), sum(map(cpu_seconds, other_pids)), time.monotonic()
    time.sleep(args.seconds)
    c1, o1, t1 = cpu_seconds(pid), sum(map(cpu_seconds, other_pids)), time.monotonic()
    f1 = source_frames() if source_frames else None
    udp1 = udp_rcvbuf_errors()
    drops1 = udp_drops([pid]), udp_drops(clients)
    a = pool.snapshot()
    dt = t1 - t0
    w = window(b, a)
    viewers = [v for v in w["viewers"] if "rtp" in v]
    # Frames the source sent in the window: at its nominal rate (the camera re-anchors
    # rather than bursting; ffmpeg -re); petcam's reader's count is printed beside it.
    sent = args.fps * w["dt"]
    frames_pct = [100 * v["rtp"]["complete"] / sent for v in viewers]
    kbps = [v["bytes"] * 8 / 1000 / w["dt"] for v in viewers]
    loss = [100 * (1 - v["rtp"]["packets"] / v["rtp"]["expected"]) if v["rtp"]["expected"]
            else 100.0 for v in viewers]
    row.update({
        "server_cpu_pct": round(100 * (c1 - c0) / dt, 1),
        "cpu_per_viewer_pct": round(100 * (c1 - c0) / dt / n, 2) if n else None,
        "other_servers_cpu_pct": round(100 * (o1 - o0) / dt, 1),
        "rss_mb": round(rss_mb(pid), 1),
        "frames_pct_min": round(min(frames_pct), 2) if frames_pct else None,
        "frames_pct_mean": round(sum(frames_pct) / len(frames_pct), 2) if frames_pct else None,
        "kbps_min": round(min(kbps)) if kbps else None,
        "kbps_mean": round(sum(kbps) / len(kbps)) if kbps else None,
        "clip_kbps": clip["kbps"],
        "loss_pct_max": round(max(loss), 3) if loss else None,
        "packets_per_viewer_s": (round(sum(v["rtp"]["packets"] for v in viewers)
                                       / len(viewers) / w["dt"]) if viewers else None),
        "srtp_checked": sum(v["rtp"]["srtp_checked"] for v in viewers),
        "srtp_failures": sum(v["rtp"]["srtp_failures"] for v in viewers),
        "receivers_counting": len(viewers),
        "client_cpu_pct": round(w["client_cpu_pct"], 1),
        "udp_rcvbuf_errors": udp1 - udp0,
        "server_socket_drops": drops1[0] - drops0[0],
        "client_socket_drops": drops1[1] - drops0[1],
        "source_fps": round((f1[0] - f0[0]) / dt, 2) if f0 is not None else None,
        "sink_dropped": f1[1] - f0[1] if f0 is not None else None,
        "retransmitted": f1[2] - f0[2] if f0 is not None else None,
        "viewers_paced": f1[3] if f1 is not None else None,
        "nacked": sum(v["rtp"].get("nacked", 0) for v in viewers),
        "load": f"{load0} -> {loadavg()}",
        "window_s": round(dt, 1),
    })
    return row


def start_petcam(args, clip_path: Path, settings: dict[str, str]) -> tuple[Stack, int]:
    """An embedded petcam (its own simulator replaying the clip into its own segment)
    with these settings in its environment, pinned to the server core; (stack, worker
    pid)."""
    stack = Stack(mode="inprocess", width=args.width, height=args.height, fps=args.fps,
                  bitrate=args.bitrate, max_viewers=max(args.counts + [1]),
                  extra_env={"PETCAM_PEER_SILENCE_TIMEOUT": "30", **settings},
                  keep_logs=args.keep_logs)
    stack.prepare()
    stack.simulator = Proc("camera", [
        PYTHON, "-m", "benchmarks.janus_fanout_bench", "--camera", str(clip_path),
        "--segment", stack.segment, "--det-segment", stack.env["PETCAM_SHM_DETECTIONS"],
        "--fps", str(args.fps)], stack.env, stack.log_dir, new_session=True)
    seg = Path("/dev/shm") / stack.segment.lstrip("/")
    wait_for(lambda: seg.exists() or not stack.simulator.alive(), 60, "the camera", 0.2)
    pinned(args.server_core, stack.start_server)
    stack.wait_live()
    pid = stack.worker_pid()
    pin_all_threads(pid, args.server_core)
    return stack, pid


PACING_VALUE = {"auto": "auto", "on": "1", "off": "0"}


def petcam_servers(pacing: str, batch_send: str = "on") -> dict[str, dict[str, str]]:
    """Server names -> their PETCAM_PACING and PETCAM_BATCH_SEND, for --pacing and
    --batch-send ("both": a second petcam with that setting off, the same clip, side by
    side in the run; --pacing all: auto, always and never, three petcams)."""
    first = {"both": "on", "all": "auto"}.get(pacing, pacing)
    servers = {"petcam": {"PETCAM_PACING": PACING_VALUE[first],
                          "PETCAM_BATCH_SEND": "0" if batch_send == "off" else "1"}}
    if pacing == "all":
        servers["petcam-paced"] = {**servers["petcam"], "PETCAM_PACING": "1"}
    if pacing in ("both", "all"):
        servers["petcam-unpaced"] = {**servers["petcam"], "PETCAM_PACING": "0"}
    if batch_send == "both":
        servers["petcam-sendto"] = {**servers["petcam"], "PETCAM_BATCH_SEND": "0"}
    return servers


def run(args) -> dict:
    counts = args.counts = [int(x) for x in args.viewers.split(",") if x != ""]
    notes: list[str] = []
    rows: list[dict] = []
    ensure_janus(notes)
    os.sched_setaffinity(0, {args.client_core})  # this process and what it starts
    wanted = args.servers.split(",")
    for extra in {"both": ["petcam-unpaced"],
                  "all": ["petcam-paced", "petcam-unpaced"]}.get(args.pacing, []):
        if "petcam" in wanted and extra not in wanted:
            wanted.insert(wanted.index("petcam") + 1, extra)
    if args.batch_send == "both" and "petcam" in wanted and "petcam-sendto" not in wanted:
        wanted.insert(wanted.index("petcam") + 1, "petcam-sendto")
    petcams = {k: v for k, v in petcam_servers(args.pacing, args.batch_send).items()
               if k in wanted}
    tmp = Path(tempfile.mkdtemp(prefix="petcam-janus-bench-"))
    stacks: dict[str, Stack] = {}
    janus = ffmpeg = None
    pools: dict[str, ClientPool] = {}
    try:
        clip_path = tmp / "clip.h264"
        print("encoding the clip ...", file=sys.stderr, flush=True)
        clip = encode_clip(clip_path, args)
        meta = json.loads(Path(f"{clip_path}.json").read_text())
        meta.update(width=args.width, height=args.height)
        Path(f"{clip_path}.json").write_text(json.dumps(meta))
        servers: dict[str, int] = {}
        signaling: dict = {"count_rtp": True}
        if args.rcvbuf:
            signaling["rcvbuf"] = args.rcvbuf
        if args.read_every_ms:
            signaling["read_every"] = args.read_every_ms / 1000
        if args.receiver_nack:
            signaling["nack"] = True
        elif args.pacing in ("auto", "all") and args.rcvbuf:
            notes.append("PETCAM_PACING=auto paces a viewer once it NACKs; these receivers "
                         "send no NACK (--receiver-nack), so auto never paces them here")
        for name, settings in petcams.items():
            stacks[name], servers[name] = start_petcam(args, clip_path, settings)
            pools[name] = ClientPool({**signaling, "kind": "http", "base": stacks[name].base,
                                      "token": stacks[name].token}, args.client_procs,
                                     send_pli=False)
        rtp_port = pick_free_port()
        log_dir = tmp / "logs"
        log_dir.mkdir()
        with socket_buffers_by_default(args.janus_input_rcvbuf) as refused:
            janus = pinned(args.server_core, lambda: Janus(tmp / "janus", log_dir, rtp_port))
        if refused:
            notes.append(refused)
        args.janus_input_rb = udp_receive_buffer(rtp_port)
        pin_all_threads(janus.pid, args.server_core)
        servers["janus"] = janus.pid
        ffmpeg = Proc("ffmpeg", [
            "timeout", "-k", "10", str(MAX_LIFETIME_S), "ffmpeg", "-hide_banner",
            "-loglevel", "error", "-re", "-stream_loop", "-1",
            "-i", str(clip_path.with_suffix(".mp4")), "-an", "-c:v", "copy", "-f", "rtp",
            "-payload_type", str(PAYLOAD_PT),
            f"udp://127.0.0.1:{rtp_port}?pkt_size={RTP_PACKET}"
            + (f"&bitrate={int(args.feed_mbits * 1e6)}" if args.feed_mbits else "")],
            os.environ.copy(), log_dir, new_session=True)
        pools["janus"] = ClientPool({**signaling, "kind": "janus", "base": janus.base,
                                     "mountpoint": MOUNTPOINT}, args.client_procs,
                                    send_pli=False)
        # The feeders must not be what loses frames: ahead of the receivers on their core.
        feeders = [s.simulator.pid for s in stacks.values()]
        for feeder in [*feeders, _child_pid(ffmpeg.pid, "ffmpeg")]:
            os.setpriority(os.PRIO_PROCESS, feeder, -10)

        def frames_read(stack: Stack):
            def read() -> tuple[int, int, int, int]:
                """(frames the reader read, frames the viewers' sinks dropped, packets
                sent again on NACKs, viewers paced) so far."""
                status = stack.status()
                sessions = status["viewers"].get("sessions", [])
                return (status["reader"]["frames_read"], sum(s["dropped"] for s in sessions),
                        sum(s.get("retransmitted") or 0 for s in sessions),
                        sum(bool(s.get("paced")) for s in sessions))
            return read
        for n in counts:
            for name in (w for w in wanted if w in servers):
                # Every other server idles meanwhile: its CPU is printed beside.
                others = [p for k, p in servers.items() if k != name]
                try:
                    row = measure(name, servers[name], others, pools[name], n, args, clip,
                                  frames_read(stacks[name]) if name in stacks else None)
                except RuntimeError as exc:
                    row = {"server": name, "viewers": n, "error": str(exc)[:300]}
                    notes.append(f"{name} {n} viewers: {exc}"[:300])
                rows.append(row)
                _progress(row)
                pools[name].close_viewers()
                if name in stacks:
                    wait_viewers_gone(stacks[name])
                time.sleep(1)
        if not ffmpeg.alive():
            notes.append(f"ffmpeg exited: {ffmpeg.log_tail(5)}")
    finally:
        for pool in pools.values():
            pool.shutdown()
        if ffmpeg is not None:
            ffmpeg.stop()
        if janus is not None:
            janus.stop()
        for stack in stacks.values():
            stack.close()
        if not args.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}", file=sys.stderr)
    return report(rows, notes, args, clip)


def _progress(row: dict) -> None:
    print(f"  {row['server']:<6} viewers={row['viewers']:>2}: cpu {row.get('server_cpu_pct')}% "
          f"frames min {row.get('frames_pct_min')}% kbps min {row.get('kbps_min')} "
          f"clients {row.get('client_cpu_pct')}% rcvbuf errors {row.get('udp_rcvbuf_errors')} "
          f"load {row.get('load')}", file=sys.stderr, flush=True)


def report(rows: list[dict], notes: list[str], args, clip: dict) -> dict:
    def find(server: str, n: int) -> dict | None:
        return next((r for r in rows if r["server"] == server and r["viewers"] == n
                     and r.get("server_cpu_pct") is not None), None)

    ratios, targets = {}, {}
    for n in sorted({r["viewers"] for r in rows}):
        p, j = find("petcam", n), find("janus", n)
        if p and j:
            ratios[f"petcam_over_janus_cpu_{n}_viewers"] = round(
                p["server_cpu_pct"] / max(j["server_cpu_pct"], 0.1), 2)
            if n in (10, 30):
                r = ratios[f"petcam_over_janus_cpu_{n}_viewers"]
                targets[f"{n} viewers: petcam CPU <= {TARGET_RATIO:g}x Janus (got {r}x)"] = (
                    r <= TARGET_RATIO)
        for server, row in (("petcam", p), ("janus", j)):
            if row and n in (30, 50):
                got = row["frames_pct_min"]
                full = row["kbps_min"] is not None and row["kbps_min"] >= 0.99 * clip["kbps"]
                targets[f"{server} {n} viewers: every viewer >= {TARGET_FRAMES:g}% of frames "
                        f"at full bitrate (got min {got}%, {row['kbps_min']} kbit/s)"] = (
                    got is not None and got >= TARGET_FRAMES and full
                    and row["connected"] == n)
        sendto = find("petcam-sendto", n)
        if p and sendto and n:
            ratios[f"petcam_sendto_over_batch_send_cpu_{n}_viewers"] = round(
                sendto["server_cpu_pct"] / max(p["server_cpu_pct"], 0.1), 2)
            if j:
                ratios[f"petcam_sendto_over_janus_cpu_{n}_viewers"] = round(
                    sendto["server_cpu_pct"] / max(j["server_cpu_pct"], 0.1), 2)
        unpaced = find("petcam-unpaced", n)
        paced_rows = {"both": [("petcam", "always")],
                      "all": [("petcam", "auto"), ("petcam-paced", "always")]}
        for server, how in paced_rows.get(args.pacing, []):
            paced = find(server, n)
            if not (paced and unpaced and n):
                continue
            ratios[f"petcam_paced_{how}_over_unpaced_cpu_{n}_viewers"] = round(
                paced["server_cpu_pct"] / max(unpaced["server_cpu_pct"], 0.1), 2)
            targets[f"{n} viewers: IDR pacing ({how}), no packet lost at the receivers' "
                    f"sockets (paced: {paced['client_socket_drops']} drops, "
                    f"{paced['loss_pct_max']}% max loss; unpaced: "
                    f"{unpaced['client_socket_drops']} drops, {unpaced['loss_pct_max']}%)"] = (
                paced["client_socket_drops"] == 0 and paced["loss_pct_max"] == 0)
    for r in rows:
        if r.get("udp_rcvbuf_errors"):
            notes.append(f"{r['server']} {r['viewers']} viewers: the kernel dropped "
                         f"{r['udp_rcvbuf_errors']} datagrams for full receive buffers")
        if r.get("client_cpu_pct", 0) > 80 * args.client_procs:
            notes.append(f"{r['server']} {r['viewers']} viewers: receivers near saturation "
                         f"({r['client_cpu_pct']}% CPU)")
    return {
        "benchmark": "janus_fanout",
        "config": {"resolution": f"{args.width}x{args.height}", "fps": args.fps,
                   "bitrate_kbps": args.bitrate, "gop": args.gop or 2 * args.fps,
                   "clip": clip, "window_s": args.seconds, "warmup_s": args.warmup,
                   "server_core": args.server_core, "client_core": args.client_core,
                   "client_processes": args.client_procs, "pacing": args.pacing,
                   "receiver_nack": args.receiver_nack,
                   "batch_send": args.batch_send,
                   "janus_input_rcvbuf_asked": args.janus_input_rcvbuf,
                   "janus_input_rcvbuf_kernel": getattr(args, "janus_input_rb", None),
                   "receiver_nice": args.receiver_nice, "receiver_fifo": args.receiver_fifo,
                   "read_every_ms": args.read_every_ms,
                   "feed_mbits": args.feed_mbits,
                   "rcvbuf": args.rcvbuf or "8 MiB (aioice asks 4 MiB)",
                   "janus": janus_version(), "petcam": "manage.py serve (embedded)",
                   "cpus": os.cpu_count()},
        "rows": rows,
        "ratios": ratios,
        "targets_met": targets,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.janus_fanout_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--viewers", default="0,1,10", help="viewer counts, e.g. 0,1,10,30,50")
    ap.add_argument("--servers", default="petcam,janus", help="which, in this order per count")
    ap.add_argument("--seconds", type=float, default=10, help="measurement window per row")
    ap.add_argument("--warmup", type=float, default=5,
                    help="seconds after connecting (Janus viewers start at the next IDR)")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--bitrate", type=int, default=8000, help="kbit/s of the clip")
    ap.add_argument("--gop", type=int, default=None, help="frames between IDRs (default 2 s)")
    ap.add_argument("--clip-seconds", type=float, default=10)
    ap.add_argument("--feed-mbits", type=float, default=FEED_MBITS,
                    help="pace ffmpeg's RTP to Janus at this rate (0: each frame one burst)")
    ap.add_argument("--janus-input-rcvbuf", type=int, default=4 * 2**20,
                    help="bytes of receive buffer Janus's RTP input socket gets (it asks "
                         "for none: net.core.rmem_default is raised to this while Janus "
                         "starts, then put back); petcam's input is shared memory, which "
                         "holds seconds of video. 0: the kernel's default (208 KiB, less "
                         "than one IDR)")
    ap.add_argument("--batch-send", choices=["on", "off", "both"], default="on",
                    help="PETCAM_BATCH_SEND (both: a petcam sending a burst per sendmmsg "
                         "and one sending a sendto per packet, in the run)")
    ap.add_argument("--pacing", choices=["auto", "on", "off", "both", "all"], default="auto",
                    help="PETCAM_PACING auto (the default: a viewer is paced once it NACKs "
                         "a packet of a big frame), on (1: always), off (0: never); both: "
                         "an always-paced and an unpaced petcam in the run; all: auto, "
                         "always and never side by side")
    ap.add_argument("--receiver-nack", action="store_true",
                    help="the receivers ask for every sequence gap again with a generic "
                         "NACK at once, as a browser does (auto pacing needs it)")
    ap.add_argument("--rcvbuf", type=int, default=0,
                    help="receivers' socket buffer in bytes (0: 8 MiB, the harness's)")
    ap.add_argument("--receiver-nice", type=int, default=0,
                    help="nice value of the receivers (e.g. -5: they, not other work on a "
                         "shared machine, get the client core when packets arrive)")
    ap.add_argument("--read-every-ms", type=float, default=0,
                    help="receivers read their sockets only this often (0: as datagrams "
                         "arrive): with --rcvbuf, a phone whose receive thread is busy")
    ap.add_argument("--receiver-fifo", type=int, default=0,
                    help="run the receivers SCHED_FIFO at this priority (e.g. 10): a packet "
                         "is read as soon as the client core can, whatever else the machine "
                         "runs, so losses at their sockets measure the server's bursts "
                         "against the buffer, not the machine's load")
    ap.add_argument("--server-core", type=int, default=0)
    ap.add_argument("--client-core", type=int, default=1)
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4, help="offers in flight per process")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--json", help="also write the JSON here")
    ap.add_argument("--camera", help=argparse.SUPPRESS)
    ap.add_argument("--segment", help=argparse.SUPPRESS)
    ap.add_argument("--det-segment", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.camera:
        camera_main(args.camera, args.segment, args.det_segment, args.fps)
        return
    result = run(args)
    cols = ["server", "viewers", "connected", "server_cpu_pct", "cpu_per_viewer_pct", "rss_mb",
            "frames_pct_min", "frames_pct_mean", "kbps_min", "kbps_mean", "loss_pct_max",
            "packets_per_viewer_s", "srtp_failures", "client_cpu_pct", "udp_rcvbuf_errors",
            "server_socket_drops", "client_socket_drops", "source_fps", "sink_dropped",
            "nacked", "retransmitted", "viewers_paced",
            "other_servers_cpu_pct", "load"]
    print_table(result["rows"], cols)
    emit(result, args.json)


if __name__ == "__main__":
    main()

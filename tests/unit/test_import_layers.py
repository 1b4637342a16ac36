"""The layering holds: no import cycles, a web tier without aiortc, aiortc hooks checked.

The layer contracts themselves are import-linter's ([tool.importlinter] in
pyproject.toml, run by `make test`); these cover what it cannot say.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("petcam_site", "streaming", "recordings", "detections")


def test_no_module_imports_itself_back_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append(f"{importer} -> {' -> '.join(back)}")
    assert cycles == []


@pytest.mark.parametrize("mode", ["inprocess", "external"])
def test_the_web_tier_loads_without_aiortc_or_the_worker(mode: str) -> None:
    """A fresh interpreter imports the URLconf and the ASGI app (every app's ready() runs):
    neither aiortc nor the worker, recorder or detection feed is loaded."""
    code = (
        "import sys, django; django.setup()\n"
        "import petcam_site.urls, petcam_site.asgi\n"
        "heavy = ('aiortc', 'aioice', 'streaming.worker.media_worker', 'streaming.media.webrtc',"
        " 'recordings.recorder', 'recordings.media', 'detections.feed')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "petcam_site.settings",
           "PETCAM_WORKER_MODE": mode, "REDIS_URL": "redis://127.0.0.1:6379/15"}
    if mode == "inprocess":
        env.pop("REDIS_URL")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_apps_plug_their_parts_into_the_worker() -> None:
    from streaming.worker import registry

    parts = dict(registry.camera_part_factories())
    assert [parts["recordings"].__name__, parts["detections"].__name__] == [
        "RecordingPart", "DetectionPart"]
    assert parts["mqtt"].__name__ == "MqttPart"
    assert [name for name, _ in registry.worker_tasks()] == ["recording-retention", "mqtt",
                                                                "webhooks", "event-retention"]


def test_aiortc_hooks_were_checked_against_the_pinned_aiortc() -> None:
    """A new aiortc fails here first: re-read aiortc_compat's hooks against its source."""
    from aiortc import RTCRtpSender
    from aiortc.codecs.h264 import H264Encoder

    from streaming.media.webrtc import aiortc_compat

    pinned = next(line.split("==")[1].strip() for line in
                  (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("aiortc=="))
    assert aiortc_compat.version() == pinned == aiortc_compat.CHECKED_AGAINST
    assert callable(H264Encoder._packetize) and callable(H264Encoder._split_bitstream)
    assert callable(RTCRtpSender._handle_rtcp_packet)
    source = Path(sys.modules["aiortc.rtcrtpsender"].__file__).read_text()
    assert "self.__encoder" in source and "self.__rtp_timestamp" in source
    # The lean sender (streaming/media/webrtc/fanout.py) replaces _run_rtp and _retransmit
    # and fills the counters _run_rtcp reads.
    for name in ("self._run_rtp(", "self._retransmit(", "self.__ntp_timestamp",
                 "self.__octet_count", "self.__packet_count", "self.__rtp_started",
                 "self.__rtp_exited", "self.__rtp_header_extensions_map", "self.__mid",
                 "self.__rtx_payload_type", "self.__rtx_sequence_number", "self._enabled"):
        assert name in source, name
    dtls = Path(sys.modules["aiortc.rtcdtlstransport"].__file__).read_text()
    for name in ("self._tx_srtp", "self.__tx_bytes", "self.__tx_packets", "def _send_rtp"):
        assert name in dtls, name
    # aiortc_compat.srtp_protect repeats pylibsrtp's Session.__process on its C handle.
    srtp = Path(sys.modules["pylibsrtp"].__file__).read_text()
    assert "func(self._srtp[0], self._cdata, len_p)" in srtp
    assert isinstance(aiortc_compat.video_codec_table(), list)


def test_aioice_hook_was_checked_against_the_pinned_aioice() -> None:
    """aiortc_compat.install_prompt_triggered_checks wraps Connection.check_incoming and
    resends a transaction through its private request and address: a new aioice fails
    here first (and maybe it triggers in-progress pairs itself by then: drop the hook)."""
    import aioice.ice
    import aioice.stun

    from streaming.media.webrtc import aiortc_compat

    pinned = next(line.split("==")[1].strip() for line in
                  (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("aioice=="))
    assert aiortc_compat.aioice_version() == pinned == aiortc_compat.AIOICE_CHECKED_AGAINST
    stun = Path(aioice.stun.__file__).read_text()
    assert "self.__request = request" in stun and "self.__addr = addr" in stun
    ice = Path(aioice.ice.__file__).read_text()
    assert "if pair.state in [CandidatePair.State.FROZEN, CandidatePair.State.FAILED]" in ice
    assert "self.transactions: dict[bytes, stun.Transaction] = {}" in ice
    before = aioice.ice.Connection.check_incoming
    try:
        aiortc_compat.install_prompt_triggered_checks()
        wrapped = aioice.ice.Connection.check_incoming
        aiortc_compat.install_prompt_triggered_checks()  # idempotent: wrapped once
        assert aioice.ice.Connection.check_incoming is wrapped and wrapped.petcam_prompt
    finally:  # the rest of this test process keeps aioice as it was
        aioice.ice.Connection.check_incoming = before

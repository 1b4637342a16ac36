"""The benchmarks' lean receivers ask for lost packets as a browser does: the generic NACK
they build is what aiortc (petcam's RTCP parser) reads back, across the sequence wrap;
and the Janus benchmark's --pacing choices start the petcams they name."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtcpPacket, RtcpRtpfbPacket

from benchmarks._rtc_clients import generic_nack
from benchmarks.janus_fanout_bench import petcam_servers


@pytest.mark.parametrize("missing", [[5], [1, 2, 3, 17, 18, 40], [65534, 65535, 0, 1, 30],
                                     list(range(100, 300))])
def test_generic_nack_reads_back_as_the_missing_sequence_numbers(missing):
    (packet,) = RtcpPacket.parse(generic_nack(0x1234, 0xABCD, missing))
    assert isinstance(packet, RtcpRtpfbPacket) and packet.fmt == 1
    assert (packet.ssrc, packet.media_ssrc) == (0x1234, 0xABCD)
    assert [seq & 0xFFFF for seq in packet.lost] == missing


@pytest.mark.parametrize("pacing, expected", [
    ("auto", {"petcam": "auto"}),
    ("on", {"petcam": "1"}),
    ("off", {"petcam": "0"}),
    ("both", {"petcam": "1", "petcam-unpaced": "0"}),
    ("all", {"petcam": "auto", "petcam-paced": "1", "petcam-unpaced": "0"}),
])
def test_pacing_choices_name_their_petcams(pacing, expected):
    servers = petcam_servers(pacing)
    assert {name: env["PETCAM_PACING"] for name, env in servers.items()} == expected
    assert all(env["PETCAM_BATCH_SEND"] == "1" for env in servers.values())

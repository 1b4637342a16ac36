"""The live fMP4 fragmenter (streaming/media/fmp4.py) and the MSE timeline: what FFmpeg
reads back from an init segment and per-frame fragments, frame for frame."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import replace

import av
import pytest

from streaming.media import fmp4
from streaming.media.mse import MseTimeline
from tests.support.h264_samples import decode
from tests.support.recordings import camera_units


def build(units, timeline: MseTimeline | None = None) -> tuple[list[bytes], list[int]]:
    """Init segments and fragments as an MSE session emits them (each frame's duration
    from the next one's decode time); the decode times."""
    timeline = timeline or MseTimeline()
    out, times = [], []
    for au in units:
        track = timeline.new_init(au)
        if track is not None:
            out.append(fmp4.init_segment(track))
        times.append(timeline.dts(au))
    for seq, au in enumerate(units, 1):
        duration = times[seq] - times[seq - 1] if seq < len(units) else timeline.interval
        out.append(fmp4.fragment(seq, times[seq - 1], duration,
                                 fmp4.avcc_sample(au.data), au.is_idr))
    return out, times


@pytest.mark.parametrize("width,height", [(320, 240), (640, 360)])
def test_ffmpeg_decodes_every_frame_with_the_camera_timing(width, height):
    units = camera_units(width, height, n=60, gop=30, jitter=True)
    parts, times = build(units)
    assert sum(p[4:8] == b"ftyp" for p in parts) == 1
    with av.open(io.BytesIO(b"".join(parts)), format="mp4") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        packets = [p for p in container.demux(stream) if p.size]
    assert [p.is_keyframe for p in packets] == [u.is_idr for u in units]
    assert [p.dts for p in packets] == times
    base = float(int(units[0].timestamp))
    for packet, au in zip(packets, units, strict=True):
        assert abs(base + packet.dts / 90_000 - au.timestamp) < 1 / 90_000
    frames, errors = decode([u.data for u in units])  # the same pictures as Annex-B gives
    with av.open(io.BytesIO(b"".join(parts)), format="mp4") as container:
        ours = list(container.decode(video=0))
    assert not errors and len(ours) == len(frames) == 60
    assert all((a.to_ndarray() == b.to_ndarray()).all() for a, b in zip(ours, frames, strict=True))


def test_ffprobe_reads_the_stream(tmp_path):
    units = camera_units(320, 240, n=30, gop=15)
    path = tmp_path / "live.mp4"
    path.write_bytes(b"".join(build(units)[0]))
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_name,profile,width,height,nb_read_frames", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True, timeout=30)
    stream = json.loads(out.stdout)["streams"][0]
    assert stream == {"codec_name": "h264", "profile": "High", "width": 320, "height": 240,
                      "nb_read_frames": "30"}


def test_mime_and_samples_leave_parameter_sets_to_the_init_segment():
    idr = camera_units(320, 240, n=1)[0]
    track = fmp4.track_info(idr.data)
    assert track.mime == f'video/mp4; codecs="avc1.{track.profile_level_id}"'
    assert track.profile_level_id.startswith("64")  # High, from the SPS
    sample = fmp4.avcc_sample(idr.data)
    kinds, at = [], 0
    while at < len(sample):
        size = int.from_bytes(sample[at:at + 4], "big")
        kinds.append(sample[at + 4] & 0x1F)
        at += 4 + size
    assert at == len(sample) and 7 not in kinds and 8 not in kinds and 5 in kinds


def test_a_new_stream_or_a_clock_jump_needs_a_new_init():
    timeline = MseTimeline()
    units = camera_units(320, 240, n=30, gop=10)
    assert timeline.new_init(units[0]) is not None
    timeline.dts(units[0])
    for au in units[1:20]:
        assert timeline.new_init(au) is None  # same stream, IDR or not
        timeline.dts(au)
    restarted = replace(units[20], timestamp=units[0].timestamp - 100)  # clock went back
    assert timeline.new_init(restarted) is not None
    bigger = camera_units(640, 360, n=1)[0]
    assert timeline.new_init(replace(bigger, timestamp=restarted.timestamp + 0.04)).width == 640


def test_decode_times_rise_even_when_the_camera_clock_does_not():
    timeline = MseTimeline()
    units = camera_units(320, 240, n=3)
    timeline.new_init(units[0])
    t0 = timeline.dts(units[0])
    t1 = timeline.dts(replace(units[1], timestamp=units[0].timestamp))  # repeated stamp
    assert t1 == t0 + 1 and timeline.interval == 1


def test_bad_input_is_refused_clearly():
    p_frame = camera_units(320, 240, n=2)[1]
    with pytest.raises(fmp4.Fmp4Error, match="no SPS and PPS"):
        fmp4.track_info(p_frame.data)
    with pytest.raises(fmp4.Fmp4Error, match="no picture"):
        fmp4.avcc_sample(b"\x00\x00\x00\x01\x09\xf0")  # an access unit delimiter only
    with pytest.raises(fmp4.Fmp4Error, match="bad timing"):
        fmp4.fragment(1, 0, 0, b"\x00\x00\x00\x01\x65", True)

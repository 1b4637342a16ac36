"""Gate camera H.264 access units for passthrough: cache SPS/PPS, start at an IDR, repair IDRs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streaming.media.burst_log import BurstLog
from streaming.media.h264.nal import NalType, annexb_join, nal_unit_spans
from streaming.media.h264.sps import SpsError, SpsInfo, parse_sps
from streaming.media.types import AccessUnit

log = logging.getLogger(__name__)



class ParameterSets:
    """The latest SPS and PPS seen. Cameras use only id 0, so one of each is enough."""

    def __init__(self) -> None:
        self.sps: bytes | None = None  # NAL bytes, no start code
        self.pps: bytes | None = None
        self.sps_info: SpsInfo | None = None

    @property
    def complete(self) -> bool:
        return self.sps is not None and self.pps is not None

    def update_sps(self, nal: bytes) -> bool:
        """Cache an SPS; True if it replaced a different one. On SpsError the cache is kept."""
        if nal == self.sps:  # repeated with every IDR: skip re-parsing
            return False
        info = parse_sps(nal)
        changed = self.sps is not None
        self.sps, self.sps_info = nal, info
        return changed

    def update_pps(self, nal: bytes) -> bool:
        """Cache a PPS; True if it replaced a different one."""
        changed = self.pps is not None and nal != self.pps
        self.pps = nal
        return changed


@dataclass(slots=True)
class ProcessorStats:
    received: int = 0
    access_units: int = 0  # passed downstream
    idr: int = 0  # IDR access units passed downstream
    parameter_sets_added: int = 0  # IDRs that got the cached SPS/PPS put in front
    dropped_before_idr: int = 0  # not an IDR, and no IDR sent yet: undecodable
    dropped_no_parameter_sets: int = 0  # IDR without SPS/PPS, none cached yet
    invalid: int = 0  # no NAL units, or a forbidden_zero_bit set
    sps_errors: int = 0  # SPS that failed to parse; the previous one was kept
    sps_changes: int = 0
    resolution_changes: int = 0
    camera_switches: int = 0  # the frame header's camera_id changed (day/night)


class H264Processor:
    """Turns camera frames into access units a browser can decode from the first one on."""

    def __init__(self) -> None:
        self.parameter_sets = ParameterSets()
        self.stats = ProcessorStats()
        self._idr_sent = False
        self._burst = BurstLog(log)
        self._camera_id: int | None = None

    @property
    def sps_info(self) -> SpsInfo | None:
        return self.parameter_sets.sps_info

    def new_stream(self) -> None:
        """The camera restarted: forget its parameter sets and wait for an IDR again."""
        self.parameter_sets = ParameterSets()
        self._idr_sent = False

    def process(self, data: bytes, frame_number: int, timestamp: float,
                camera_id: int | None = None) -> AccessUnit | None:
        """The access unit to send for one camera frame, or None if it must be dropped."""
        self.stats.received += 1
        if camera_id != self._camera_id:
            if self._camera_id is not None and camera_id is not None:
                # Day/night switch: another encoder. Its P-frames cannot use the other
                # camera's pictures, nor its IDRs the other camera's SPS/PPS: start over.
                self.stats.camera_switches += 1
                self.new_stream()
            self._camera_id = camera_id
        # Spans, not slices: an IDR is ~150 KB and only the parameter sets need copying.
        spans = nal_unit_spans(data)
        headers = [data[start] for start, _ in spans]
        if not spans or any(h & 0x80 for h in headers):
            self.stats.invalid += 1
            self._burst.warning("invalid", "frame %d: no NAL units or forbidden bit", frame_number)
            return None
        types = tuple(h & 0x1F for h in headers)

        for (start, end), nal_type in zip(spans, types, strict=True):
            if nal_type == NalType.SPS:
                self._update_sps(data[start:end], frame_number)
            elif nal_type == NalType.PPS:
                self.parameter_sets.update_pps(data[start:end])

        if NalType.IDR not in types:
            if not self._idr_sent:  # references frames the browser never got
                self.stats.dropped_before_idr += 1
                return None
            return self._emit(data, False, frame_number, timestamp, types)

        before_idr = types[: types.index(NalType.IDR)]
        if NalType.SPS not in before_idr or NalType.PPS not in before_idr:
            if not self.parameter_sets.complete:
                self.stats.dropped_no_parameter_sets += 1
                return None
            data, types = self._insert_parameter_sets(data, spans, types)
            self.stats.parameter_sets_added += 1
        self._idr_sent = True
        self.stats.idr += 1
        return self._emit(data, True, frame_number, timestamp, types)

    def _update_sps(self, nal: bytes, frame_number: int) -> None:
        old = self.parameter_sets.sps_info
        try:
            changed = self.parameter_sets.update_sps(nal)
        except SpsError as exc:
            self.stats.sps_errors += 1
            self._burst.warning("sps", "frame %d: bad SPS kept out of cache: %s", frame_number, exc)
            return
        new = self.parameter_sets.sps_info
        if not changed or old is None or new is None:
            return
        self.stats.sps_changes += 1
        if (old.width, old.height) != (new.width, new.height):
            self.stats.resolution_changes += 1
        log.info(
            "SPS changed at frame %d: %dx%d %s -> %dx%d %s",
            frame_number, old.width, old.height, old.profile_level_id,
            new.width, new.height, new.profile_level_id,
        )

    def _insert_parameter_sets(
        self, data: bytes, spans: list[tuple[int, int]], types: tuple[int, ...]
    ) -> tuple[bytes, tuple[int, ...]]:
        """Cached SPS+PPS inserted in front of the first NAL unit, or after a leading AUD.

        A pure insertion before that NAL's start code (zero_byte included), so every
        original byte stays, in order. An AUD must stay first in its access unit (7.4.1.2.3).
        """
        ps = self.parameter_sets
        assert ps.sps is not None and ps.pps is not None
        index = 1 if types[0] == NalType.AUD else 0
        if index:
            at = spans[0][1]  # right after the AUD; the zeros that follow it are start code
        else:
            at = spans[0][0] - 3
            while at > 0 and data[at - 1] == 0:  # leading_zero_8bits / zero_byte
                at -= 1
        inserted = annexb_join((ps.sps, ps.pps))
        new_types = types[:index] + (NalType.SPS, NalType.PPS) + types[index:]
        return data[:at] + inserted + data[at:], tuple(int(t) for t in new_types)

    def _emit(
        self, data: bytes, is_idr: bool, frame_number: int, timestamp: float, types: tuple[int, ...]
    ) -> AccessUnit:
        self.stats.access_units += 1
        return AccessUnit(data, is_idr, frame_number, timestamp, types, self._camera_id)

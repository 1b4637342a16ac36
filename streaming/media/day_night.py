"""Day and night: which of the board's cameras is active (the frame header's camera_id).

The board has a day camera (camera_id 0) and an infrared night camera (1); its
camera switcher changes the camera, and often the resolution, mid-stream. The
video keeps flowing (the new camera starts with an IDR carrying its own SPS/PPS);
`ActiveCamera` notices the change and keeps the latest switch for the status
API, /health, the live page and the WebSocket event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

CAMERA_NAMES = {0: "day", 1: "night"}


def camera_name(camera_id: int | None) -> str | None:
    """"day", "night", "camera 7" for an id the board does not use; None: no id (not shm)."""
    if camera_id is None:
        return None
    return CAMERA_NAMES.get(camera_id, f"camera {camera_id}")


@dataclass(frozen=True)
class CameraSwitch:
    """One change of the active camera, seen on the first access unit of the new one."""

    camera_id: int
    from_camera_id: int
    timestamp: float  # camera clock (CLOCK_MONOTONIC s) of that access unit
    wall: float  # time.time() when it was seen
    frame_number: int

    def as_dict(self, now: float | None = None) -> dict:
        at = datetime.fromtimestamp(self.wall, UTC).isoformat()
        return {"camera_id": self.camera_id, "active_camera": camera_name(self.camera_id),
                "from_camera_id": self.from_camera_id,
                "from_camera": camera_name(self.from_camera_id), "at": at,
                "frame_number": self.frame_number,
                **({"age_s": round(now - self.wall, 3)} if now is not None else {})}


class ActiveCamera:
    """The camera_id of the latest access unit, and the switches between ids."""

    def __init__(self) -> None:
        self.camera_id: int | None = None
        self.switches = 0
        self.last_switch: CameraSwitch | None = None

    def observe(self, camera_id: int | None, timestamp: float,
                frame_number: int) -> CameraSwitch | None:
        """The switch this access unit starts, if any (the first id seen is no switch)."""
        if camera_id is None or camera_id == self.camera_id:
            return None
        previous, self.camera_id = self.camera_id, camera_id
        if previous is None:
            return None
        self.switches += 1
        self.last_switch = CameraSwitch(camera_id, previous, timestamp, time.time(), frame_number)
        return self.last_switch

    def status(self) -> dict:
        """`active_camera` ("day"/"night"), the raw `camera_id`, and the last switch."""
        last = self.last_switch
        return {"active_camera": camera_name(self.camera_id), "camera_id": self.camera_id,
                "camera_switches": self.switches,
                "last_camera_switch": last.as_dict(time.time()) if last else None}

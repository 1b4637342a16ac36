"""Camera simulator: synthetic scene, libx264 encoder and the paced shared-memory writer."""

from .encoder import PRESETS, PROFILES, EncodedFrame, H264Encoder
from .runner import (
    DETECTION_FAULTS,
    ENCODE_MODES,
    FAULT_KINDS,
    STREAM_FAULTS,
    CameraSimulator,
    SimulatorConfig,
    SimulatorStats,
)
from .scene import Scene, decode_frame_number, pet_box

__all__ = [
    "DETECTION_FAULTS",
    "ENCODE_MODES",
    "FAULT_KINDS",
    "PRESETS",
    "PROFILES",
    "STREAM_FAULTS",
    "CameraSimulator",
    "EncodedFrame",
    "H264Encoder",
    "Scene",
    "SimulatorConfig",
    "SimulatorStats",
    "decode_frame_number",
    "pet_box",
]

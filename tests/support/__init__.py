"""Helpers shared by the tests and the benchmarks: processes, sites, services, WebRTC and
RTSP peers, H.264 samples, the browser."""

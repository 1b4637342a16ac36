"""Tests with real processes: the site (daphne), the media worker, the simulator, PostgreSQL,
Redis, an RTSP server, aiortc peers over loopback."""

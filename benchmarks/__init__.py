"""Benchmarks: scripts that measure petcam and print a table and JSON. Not tests: pytest
does not collect them. Run each as a module from the repository root, e.g.

    .venv/bin/python -m benchmarks.webrtc_fanout_bench --help

They share the tests' helpers (tests/support/) and their own harness (_harness.py: a
throw-away install to measure, figures and the report; _rtc_clients.py: receive-only
aiortc viewers in client processes).
"""

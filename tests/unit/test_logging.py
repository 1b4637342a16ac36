"""Logging: readable by default, JSON lines with LOG_FORMAT=json, repeated faults folded.

The end-to-end JSON check (a real site's viewer join/leave and recording
start/stop lines) lives in tests/integration/test_metrics.py, whose site runs
with LOG_FORMAT=json; these are the quick checks of the configuration itself.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import subprocess
import sys

import pytest

from petcam_site import logging_config
from streaming.media.shm.stream_reader import FrameReader
from streaming.media.shm.writer import FrameWriter
from tests.support.processes import ROOT, site_env
from tests.unit.test_shm_reader import payload


def configured_logger(fmt: str, level: str = "INFO") -> tuple[logging.Logger, io.StringIO]:
    """A logger set up from build(), writing to a buffer instead of stderr."""
    config = logging_config.build(level, fmt)
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    config["root"]["handlers"] = []  # leave pytest's root handlers alone
    config["loggers"] = {"petcam.test": {"handlers": ["console"], "level": level.upper(),
                                         "propagate": False}}
    logging.config.dictConfig(config)
    return logging.getLogger("petcam.test"), stream


def test_default_lines_are_readable():
    log, out = configured_logger("text")
    log.info("viewer %s joined %s (%d/%d)", "abc", "default", 1, 10)
    line = out.getvalue().strip()
    assert line.endswith("INFO    [petcam.test] viewer abc joined default (1/10)"), line


def test_json_lines_carry_level_logger_message_and_extras():
    log, out = configured_logger("json")
    log.warning("camera %s: %d garbage slots", "default", 12, extra={"camera": "default"})
    try:
        raise OSError("disk gone")
    except OSError:
        log.exception("recording failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "petcam.test"
    assert first["message"] == "camera default: 12 garbage slots"
    assert first["camera"] == "default" and isinstance(first["process"], int) and first["time"]
    assert second["level"] == "ERROR" and "OSError: disk gone" in second["exc_info"]


def test_level_comes_from_the_environment():
    log, out = configured_logger("text", "warning")
    log.info("not shown")
    log.warning("shown")
    assert out.getvalue().count("\n") == 1 and "shown" in out.getvalue()


def test_health_saying_503_is_not_logged_as_a_server_error(rf):
    from django.utils.log import log_response

    config = logging_config.build("INFO", "text")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    config["root"]["handlers"] = []
    config["loggers"]["django.request"].update(handlers=["console"], propagate=False)
    logging.config.dictConfig(config)
    for path, status in (("/health", 503), ("/api/recordings/", 503), ("/health", 500)):
        response = type("R", (), {"status_code": status, "_has_been_logged": False})()
        log_response("%s: %s", status, path, response=response, request=rf.get(path))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "/api/recordings/" in lines[0] and "/health" in lines[1], lines


def test_an_unknown_format_is_refused_at_start_up(tmp_path):
    env = site_env(tmp_path, LOG_FORMAT="xml")
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "LOG_FORMAT must be one of text, json, got 'xml'" in out.stderr


def test_a_burst_of_garbage_slots_is_one_warning_with_a_count(shm_name, caplog):
    """A camera writing garbage at 30 fps must not write 30 log lines a second."""
    writer = FrameWriter(shm_name)
    reader = FrameReader(shm_name, backoff_initial=0.001, probe_writer=False)
    caplog.set_level(logging.WARNING, logger="petcam.shm")
    try:
        writer.write(payload(1), width=64, height=64)
        reader.poll()
        for _ in range(3):
            for _ in range(8):
                writer.write(b"GET / HTTP/1.1\r\n" * 10, width=64, height=64)
            writer.write(payload(2), width=64, height=64)
            reader.poll()
        assert reader.stats.skipped == {"not_annexb": 24}
        lines = [r.getMessage() for r in caplog.records if r.name == "petcam.shm"]
        assert len(lines) == 1, lines
        # The next report (after the interval) says how many were folded in.
        reader._faults._last = {k: v - 60 for k, v in reader._faults._last.items()}
        writer.write(b"\0\0\2garbage", width=64, height=64)
        writer.write(payload(3), width=64, height=64)
        reader.poll()
        lines = [r.getMessage() for r in caplog.records if r.name == "petcam.shm"]
        assert len(lines) == 2 and "(23 more since last report)" in lines[1], lines
    finally:
        writer.close()
        reader.close()


def test_a_slow_viewer_overflowing_again_and_again_is_one_line_per_interval(caplog):
    """A viewer on a bad link overflows its queue every few seconds; the operator reads one
    line for it (with the drops so far), not one per overflow."""
    from streaming.media.hub import Hub
    from tests.unit.test_hub import gop_stream

    caplog.set_level(logging.WARNING, logger="petcam.hub")
    hub = Hub("cam")
    slow = hub.subscribe("cam/viewer slowpoke", maxsize=3, from_gop=False)
    other = hub.subscribe("cam/viewer other", maxsize=3, from_gop=False)
    for unit in gop_stream(5, 60):  # nobody reads: both overflow every GOP
        hub.publish(unit)
    assert slow.stats.overflows >= 10 and other.stats.overflows >= 10
    lines = [r.getMessage() for r in caplog.records if r.name == "petcam.hub"]
    assert len(lines) == 2, lines  # one per sink
    assert "sink cam/viewer slowpoke fell 3 units behind" in lines[0]


@pytest.fixture(autouse=True)
def _restore_logging():
    """Each test reconfigures logging; put the test run's configuration back."""
    from django.conf import settings

    yield
    logging.config.dictConfig(settings.LOGGING)

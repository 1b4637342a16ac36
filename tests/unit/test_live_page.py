"""The live page (issue 17, items 2 and 6): the camera's name from the Camera model in the
heading and title, technical status only for operators and admins, the record button only
for roles that may record, and the camera's phase (starting / live / off) that lets the page
say "starting camera" instead of "camera off" before the first frame."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from streaming.media import pipeline as pipeline_module
from streaming.media.pipeline import CameraPipeline
from streaming.media.types import CameraConfig
from streaming.models import Camera
from tests.support.roles import make_user

# What only operators and admins may see on the page.
TECHNICAL = ('data-testid="details"', 'data-testid="frames-read"', 'data-testid="profile"',
             ">Segment<", ">GOP<", 'data-testid="camera-slug"')


def page(user, path: str = "/") -> str:
    client = Client()
    client.force_login(user)
    reply = client.get(path)
    assert reply.status_code == 200, reply.status_code
    return reply.content.decode()


@pytest.fixture
def named_camera(db):
    Camera.objects.filter(slug="default").update(name="Kitchen corner")


@pytest.mark.parametrize(("who", "details", "record"), [
    ("viewer", False, False),
    ("operator", True, True),
    ("admin", True, True),
    ("staff viewer", True, False),
    ("superuser", True, True),
])
def test_details_and_record_button_by_role(named_camera, who, details, record):
    user = {"viewer": lambda: make_user("v", "viewers"),
            "operator": lambda: make_user("o", "operators"),
            "admin": lambda: make_user("a", "admins", staff=True),
            "staff viewer": lambda: make_user("s", "viewers", staff=True),
            "superuser": lambda: make_user("root", superuser=True)}[who]()
    html = page(user)
    for marker in TECHNICAL:
        assert (marker in html) is details, (who, marker)
    assert ('data-testid="record-button"' in html) is record, who
    # everyone gets the picture, its controls, the state line and the activity
    for testid in ("video", "state", "snapshot-button", "fullscreen-button", "pip-button",
                   "activity-chart"):
        assert f'data-testid="{testid}"' in html, (who, testid)


def test_the_heading_and_title_are_the_camera_name_not_the_slug(named_camera):
    html = page(make_user("v", "viewers"))
    assert re.search(r"<title>Kitchen corner · live · petcam</title>", html)
    assert '<h2 class="camera-name" data-testid="camera-name">Kitchen corner</h2>' in html
    assert 'data-camera-name="Kitchen corner"' in html
    assert "<code>default</code>" not in html


def test_the_grid_names_every_camera_and_keeps_details_for_operators(named_camera):
    Camera.objects.create(slug="garden", name="Back garden", position=1)
    viewer_html = page(make_user("v", "viewers"))
    operator_html = page(make_user("o", "operators"))
    for html in (viewer_html, operator_html):
        assert "<h2>Kitchen corner</h2>" in html and "<h2>Back garden</h2>" in html
        assert 'data-focus="/?camera=garden"' in html  # tap a tile to watch it alone
    assert 'data-testid="tile-details"' not in viewer_html
    assert operator_html.count('data-testid="tile-details"') == 2
    one = page(make_user("o2", "operators"), "/?camera=garden")
    assert "<title>Back garden · live · petcam</title>" in one
    assert '<b aria-current="page">Back garden</b>' in one


def test_the_camera_phase_is_starting_until_the_first_frame_then_off():
    config = CameraConfig(slug="phase", name="Phase", source="",
                          stream_segment="/petcam_phase_test_absent",
                          detections_segment="/petcam_phase_test_absent_d", max_viewers=1)
    p = CameraPipeline(config)
    try:
        now = time.monotonic()
        assert p.status()["phase"] == "starting" and not p.status()["live"]
        assert p.phase(True, now) == "live"
        # never a frame: "starting" only for a while, then honestly off
        assert p.phase(False, now + pipeline_module.START_GRACE_SECONDS + 1) == "off"
        p._last_au_at = now  # a frame came: from now on not live means off
        assert p.phase(False, now) == "off"
    finally:
        p.stop()

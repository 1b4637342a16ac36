"""Help texts in the admin render as written (issue 17, item 8): the admin treats help
text as HTML, so a `<slug>` in it vanished as an unknown tag."""

from __future__ import annotations

import html
import re

from django.test import Client

from streaming.models import Camera
from tests.support.roles import make_user


def test_camera_help_texts_render_as_written(db):
    client = Client()
    client.force_login(make_user("root", superuser=True))
    page = client.get("/admin/streaming/camera/add/")
    assert page.status_code == 200
    shown = {html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
             for text in re.findall(r'<div class="help"[^>]*>(.*?)</div>',
                                    page.content.decode(), re.S)}
    for field in Camera._meta.get_fields():
        text = str(getattr(field, "help_text", "") or "")
        if text:
            assert "<" not in text, f"{field.name}: {text!r} would render as HTML"
            assert text in shown, f"{field.name}: {text!r} not shown as written in {shown}"
    assert any("/api/cameras/garden/" in text for text in shown)

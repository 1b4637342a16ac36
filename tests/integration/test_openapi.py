"""The OpenAPI document (GET /api/schema/) is in sync with the code and tells the truth.

1. The schema generated from the code equals the committed tests/support/openapi.json, so
   every API change shows up in review (refresh command in the failure message).
   drf-spectacular's own warnings (an unannotated view, a guessed type) fail too.
2. schemathesis fuzzes every operation of a real running site (the shared two-camera
   site, token auth, finished recordings to download) and fails on any 5xx, any
   status code, content type, header or body the schema does not document.
   The live-offer endpoints are fuzzed too: random text is never a valid SDP offer,
   so no peer is ever started and every answer must be a documented 4xx.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.support.processes import ROOT, wait_for
from tests.support.webrtc_client import http

SCHEMA_FILE = ROOT / "tests" / "support" / "openapi.json"
REFRESH = (".venv/bin/python manage.py spectacular --format openapi-json "
           f"--file {SCHEMA_FILE.relative_to(ROOT)}")
# Examples per operation and phase: enough to hit every documented branch a few
# times, small enough that the whole run stays around half a minute.
MAX_EXAMPLES = 5
SEED = 20261121  # reproducible in CI; change it to explore other inputs


def generated_schema(tmp_path: Path, capsys) -> dict:
    out = tmp_path / "openapi.json"
    # --validate: a valid OpenAPI 3 document; --fail-on-warn: nothing guessed or skipped.
    try:
        call_command("spectacular", "--format", "openapi-json", "--file", str(out),
                     "--validate", "--fail-on-warn")
    except Exception as exc:
        captured = capsys.readouterr()
        pytest.fail(f"drf-spectacular cannot describe the API as it is ({exc}):\n"
                    f"{captured.err}{captured.out}\nAnnotate the view with @extend_schema: "
                    "request and response serializers, errors(...) for its error statuses "
                    "(petcam_site/api_schema.py has the shared pieces).")
    return json.loads(out.read_text())


def differences(old: dict, new: dict, where: str = "") -> list[str]:
    """Where two JSON documents differ, as short paths (added / removed / changed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            path = f"{where}/{key}"
            if key not in old:
                found.append(f"added   {path}")
            elif key not in new:
                found.append(f"removed {path}")
            else:
                found.extend(differences(old[key], new[key], path))
        return found
    return [] if old == new else [f"changed {where or '/'}"]


def test_committed_schema_is_in_sync(tmp_path, capsys):
    current = generated_schema(tmp_path, capsys)
    assert SCHEMA_FILE.exists(), f"{SCHEMA_FILE} is missing: create it with\n  {REFRESH}"
    committed = json.loads(SCHEMA_FILE.read_text())
    diff = differences(committed, current)
    assert not diff, (
        f"The API changed but {SCHEMA_FILE.relative_to(ROOT)} was not refreshed. Review the "
        "changes, then "
        f"run\n  {REFRESH}\nand commit the file. Differences (committed -> code):\n  "
        + "\n  ".join(diff[:40]) + (f"\n  ... {len(diff) - 40} more" if len(diff) > 40 else ""))


def test_every_error_response_is_the_error_shape():
    schema = json.loads(SCHEMA_FILE.read_text())
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if int(code) < 400:
                    continue
                content = response.get("content", {})
                assert list(content) == ["application/json"], (method, path, code)
                ref = content["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code, ref)


# --- schemathesis against a real site -----------------------------------------------------


@pytest.fixture(scope="module")
def site(two_camera_site):
    two_camera_site.wait_both_live()
    two_camera_site.stop_recordings()
    two_camera_site.recordings = [record(two_camera_site, slug) for slug in ("default", "garden")]
    yield two_camera_site
    # The fuzzer may have made recording schedules (which would start recordings again)
    # and started recordings: leave the shared site without either.
    for camera in ("default", "garden"):
        path = f"/api/cameras/{camera}/recording-schedules/"
        for schedule in two_camera_site.call("GET", path).json()["results"]:
            two_camera_site.call("DELETE", f"{path}{schedule['id']}/")
    two_camera_site.stop_recordings()


def record(site, camera: str, seconds: float = 1.0) -> int:
    """A finished recording (something real to download and to fuzz ids with)."""
    start = site.call("POST", f"/api/cameras/{camera}/recording/start/", {})
    assert start.status == 201, start.body
    time.sleep(seconds)
    stop = site.call("POST", f"/api/cameras/{camera}/recording/stop/")
    assert stop.status == 200 and stop.json()["status"] == "complete", stop.body
    return start.json()["id"]


def test_malformed_sdp_is_a_400(site):
    auth = {"Authorization": f"Bearer {site.token}"}
    for path, body, ctype in [
        ("/api/cameras/default/webrtc/offer/", json.dumps({"type": "offer", "sdp": "v=0\nx"}),
         "application/json"),
        ("/api/webrtc/offer", json.dumps({"type": "offer", "sdp": 42}), "application/json"),
        ("/whep/default", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "application/sdp"),
    ]:
        reply = http("POST", site.base + path, body.encode(), {**auth, "Content-Type": ctype})
        assert reply.status == 400, (path, reply.status, reply.body)
        assert reply.json()["error"] in ("invalid_sdp", "parse_error"), reply.body


def test_schemathesis_finds_no_server_errors_or_schema_violations(site, tmp_path):
    ids = ", ".join(str(i) for i in site.recordings)
    config = tmp_path / "schemathesis.toml"
    # Real identifiers most of the time, so requests get past the 404s to the real work.
    config.write_text(f"""
hooks = "tests.support.schemathesis_hooks"
[dictionaries.cameras]
values = ["default", "garden"]
[dictionaries.recordings]
values = [{ids}]
[parameters]
"path.camera" = {{ dictionary = "cameras", probability = 0.8 }}
"path.id" = {{ dictionary = "recordings", probability = 0.8 }}
""")
    cmd = [str(Path(sys.executable).parent / "st"), "--no-color", "--config-file", str(config),
           "run",
           f"{site.base}/api/schema/", "--header", f"Authorization: Bearer {site.token}",
           "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
           "response_headers_conformance,response_schema_conformance",
           # revoking the run's own token would turn the rest of the run into 401s
           "--exclude-operation-id", "auth_token_revoke",
           "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
           "--request-timeout", "15", "--output-truncate", "true"]
    # cwd: schemathesis leaves a cache there; PYTHONPATH: it imports the hooks module.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    summary = run.stdout[run.stdout.find("=== FAILURES"):] if "FAILURES" in run.stdout else ""
    assert run.returncode == 0, (
        f"schemathesis found problems (reproduce: the `st replay` lines, or rerun with "
        f"--seed {SEED}):\n{summary or run.stdout[-6000:]}\n{run.stderr[-2000:]}")
    assert "Tested:" in run.stdout and "Test cases:" in run.stdout, run.stdout[-3000:]
    # the site stayed healthy through the run (nothing wedged by odd input)
    assert http("GET", site.base + "/health").status == 200
    wait_for(lambda: http("GET", site.base + "/api/cameras/default/",
                          headers={"Authorization": f"Bearer {site.token}"}).json()["live"],
             10, "the camera to still be live")

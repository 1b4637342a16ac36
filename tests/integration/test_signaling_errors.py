"""Signaling on real HTTP: every bad input gets its exact status and error code, and loses
nothing (the camera keeps streaming, a watching viewer is not disturbed, no viewer slot
is taken); plus the happy paths of WHEP, the seeds' endpoint and session auth with CSRF.

One site and one simulator serve the module. A "witness" aiortc viewer watches the
whole time from a background event loop; after each test it must still be the one
viewer the server knows and still be receiving frames.
"""

from __future__ import annotations

import json
import secrets

import pytest

from streaming.media.shm import segment as shm_segment
from tests.support.processes import Client, site_env, start_simulator, wait_for
from tests.support.webrtc_client import (
    MIN_SHARE,
    LoopThread,
    SignalingError,
    WebRtcClient,
    camera_fps,
    camera_mark,
    http,
    running_site,
    strip_video_codecs,
    wait_live,
)

MAX_VIEWERS = 3
MAX_SDP_BYTES = 65536
OFFER_PATH = "/api/cameras/default/webrtc/offer/"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("signaling")
    env = site_env(tmp, PETCAM_MAX_VIEWERS=str(MAX_VIEWERS), PETCAM_ICE_TIMEOUT="10",
                   PETCAM_PEER_SILENCE_TIMEOUT="5")
    with running_site(env, tmp / "logs") as site:
        sim = start_simulator(env, tmp / "logs", "--bitrate", "600")
        try:
            wait_live(site.base, site.token, width=320)
            yield site
        finally:
            sim.stop()
    shm_segment.unlink(env["PETCAM_SHM_STREAM"])
    shm_segment.unlink(env["PETCAM_SHM_DETECTIONS"])


@pytest.fixture(scope="module")
def loop():
    thread = LoopThread()
    yield thread
    thread.close()


def new_client(loop: LoopThread, site, **kwargs) -> WebRtcClient:
    """A client made on the clients' loop (aiortc wants a running loop when built)."""

    async def make() -> WebRtcClient:
        return WebRtcClient(site.base, site.token, **kwargs)

    return loop.run(make())


@pytest.fixture(scope="module")
def witness(site, loop):
    client = new_client(loop, site, name="witness")
    loop.run(client.connect())
    loop.run(client.wait_frames(30))
    client.watch_mark = camera_mark(site)  # the witness's whole-module window starts
    yield client
    loop.run(client.close())


@pytest.fixture(scope="module")
def offer_sdp(loop) -> str:
    """A real aiortc offer (recvonly video: VP8 and H.264), never answered."""

    async def make() -> str:
        client = WebRtcClient("http://unused", None)
        sdp = await client.create_offer()
        await client.pc.close()
        return sdp

    return loop.run(make())


@pytest.fixture(autouse=True)
def nothing_lost(site, witness):
    """Whatever a test sends, the camera streams on and the witness is undisturbed."""
    frames_read = site.status()["reader"]["frames_read"]
    yield
    status = wait_for(lambda: (s := site.status())["reader"]["frames_read"] > frames_read and s,
                      5, "the camera to keep streaming")
    assert status["live"], status
    viewers = status["viewers"]
    assert viewers["count"] == 1, viewers
    assert [s["session"] for s in viewers["sessions"]] == [witness.session]
    assert viewers["sessions"][0]["state"] == "connected"
    seen = len(witness.frames)
    wait_for(lambda: len(witness.frames) >= seen + 3, 5, "the witness to keep receiving")


def auth(site) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.token}"}


def error_of(reply) -> str:
    content_type = reply.header("Content-Type") or ""
    assert content_type.startswith("application/json"), (reply.status, content_type,
                                                          reply.body[:300])
    body = reply.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    return body["error"]


def post_json(site, body: bytes, path: str = OFFER_PATH, headers: dict | None = None):
    return http("POST", site.base + path, body,
                {"Content-Type": "application/json", **auth(site), **(headers or {})})


def post_whep(site, body: bytes, content_type: str | None = "application/sdp",
              camera: str = "default"):
    headers = auth(site)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return http("POST", f"{site.base}/whep/{camera}", body, headers)


def audio_only(sdp: str) -> str:
    return sdp.replace("m=video", "m=audio")


# Bodies that pass the offer's prefix check (v=0 first, a video m-line) but are no SDP
# aiortc can parse.
SDP_GARBAGE = {
    "bare_m_line": "v=0\r\nm=video\r\n",
    "m_line_no_proto": "v=0\r\nm=video 9\r\n",
    "bad_version": "v=0 hello\nm=video lorem ipsum dolor\n",
    "rtpmap_no_codec": ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96\r\n"),
    "control_bytes": "v=0\r\nm=video \x01\x02 \x7f\r\n\r\n",
}


BAD_JSON_OFFERS = {
    # id: (body from the real offer, status, error code)
    "malformed_json": (lambda sdp: b'{"type": "offer", "sdp": ', 400, "parse_error"),
    "not_utf8": (lambda sdp: b'{"type": "offer", "sdp": "v=0\xff"}', 400, "parse_error"),
    "json_array": (lambda sdp: json.dumps(["offer", sdp]).encode(), 400, "parse_error"),
    "json_string": (lambda sdp: json.dumps(sdp).encode(), 400, "parse_error"),
    "json_number": (lambda sdp: b"42", 400, "parse_error"),
    "json_null": (lambda sdp: b"null", 400, "parse_error"),
    "empty_body": (lambda sdp: b"", 400, "invalid_sdp"),
    "missing_sdp": (lambda sdp: b'{"type": "offer"}', 400, "invalid_sdp"),
    "empty_sdp": (lambda sdp: b'{"type": "offer", "sdp": ""}', 400, "invalid_sdp"),
    "blank_sdp": (lambda sdp: b'{"type": "offer", "sdp": " \\r\\n\\t"}', 400, "invalid_sdp"),
    "sdp_number": (lambda sdp: b'{"type": "offer", "sdp": 5}', 400, "invalid_sdp"),
    "sdp_null": (lambda sdp: b'{"type": "offer", "sdp": null}', 400, "invalid_sdp"),
    "sdp_list": (lambda sdp: json.dumps({"type": "offer", "sdp": [sdp]}).encode(), 400,
                 "invalid_sdp"),
    "sdp_object": (lambda sdp: json.dumps({"type": "offer", "sdp": {"sdp": sdp}}).encode(),
                   400, "invalid_sdp"),
    "type_answer": (lambda sdp: json.dumps({"type": "answer", "sdp": sdp}).encode(), 400,
                    "invalid_sdp"),
    "type_null": (lambda sdp: json.dumps({"type": None, "sdp": sdp}).encode(), 400,
                  "invalid_sdp"),
    "not_sdp": (lambda sdp: b'{"type": "offer", "sdp": "hello"}', 400, "invalid_sdp"),
    "audio_only": (lambda sdp: json.dumps({"type": "offer", "sdp": audio_only(sdp)}).encode(),
                   400, "invalid_sdp"),
    "vp8_only": (lambda sdp: json.dumps({"type": "offer",
                                         "sdp": strip_video_codecs(sdp, "VP8")}).encode(),
                 400, "invalid_sdp"),
    "oversize_sdp": (lambda sdp: json.dumps({"type": "offer", "sdp": sdp + "a=x-pad:"
                                             + "x" * MAX_SDP_BYTES + "\r\n"}).encode(),
                     413, "too_large"),
    "oversize_body": (lambda sdp: json.dumps({"type": "offer", "sdp": sdp,
                                              "pad": "x" * MAX_SDP_BYTES}).encode(),
                      413, "too_large"),
}


@pytest.mark.parametrize("case", list(BAD_JSON_OFFERS))
def test_bad_json_offer(site, offer_sdp, case):
    make, status, code = BAD_JSON_OFFERS[case]
    reply = post_json(site, make(offer_sdp))
    assert (reply.status, error_of(reply)) == (status, code), reply.body[:300]


@pytest.mark.parametrize("case", list(SDP_GARBAGE))
def test_sdp_garbage_that_passes_the_prefix_check_is_400_invalid_sdp(site, case):
    sdp = SDP_GARBAGE[case]
    reply = post_json(site, json.dumps({"type": "offer", "sdp": sdp}).encode())
    assert (reply.status, error_of(reply)) == (400, "invalid_sdp"), reply.body[:300]
    reply = post_whep(site, sdp.encode())
    assert (reply.status, error_of(reply)) == (400, "invalid_sdp"), reply.body[:300]


def test_vp8_only_offer_is_refused_on_every_endpoint(site, offer_sdp):
    vp8 = strip_video_codecs(offer_sdp, "VP8")
    assert "H264" not in vp8 and "VP8/90000" in vp8
    for path in (OFFER_PATH, "/api/webrtc/offer"):
        reply = post_json(site, json.dumps({"type": "offer", "sdp": vp8}).encode(), path)
        assert (reply.status, error_of(reply)) == (400, "invalid_sdp"), reply.body
        assert "H.264" in reply.json()["detail"]
    reply = post_whep(site, vp8.encode())
    assert (reply.status, error_of(reply)) == (400, "invalid_sdp"), reply.body


def test_json_offer_with_another_content_type_is_415(site, offer_sdp):
    body = json.dumps({"type": "offer", "sdp": offer_sdp}).encode()
    reply = post_json(site, body, headers={"Content-Type": "text/plain"})
    assert (reply.status, error_of(reply)) == (415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/sdpx",
                                          "application/x-www-form-urlencoded", None])
def test_whep_offer_with_another_content_type_is_415(site, offer_sdp, content_type):
    reply = post_whep(site, offer_sdp.encode(), content_type)
    assert (reply.status, error_of(reply)) == (415, "unsupported_media_type"), reply.body


@pytest.mark.parametrize("case,body,status,code", [
    ("oversize", b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" + b"a=x\r\n" * 20000, 413,
     "too_large"),
    ("not_utf8", b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\xff\xfe", 400, "invalid_sdp"),
    ("empty", b"", 400, "invalid_sdp"),
    ("audio_only", b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n", 400, "invalid_sdp"),
])
def test_bad_whep_offer(site, case, body, status, code):
    assert len(body) <= MAX_SDP_BYTES or case == "oversize"
    reply = post_whep(site, body)
    assert (reply.status, error_of(reply)) == (status, code), reply.body[:300]


def test_unknown_camera_is_404(site, offer_sdp, witness):
    body = json.dumps({"type": "offer", "sdp": offer_sdp}).encode()
    reply = post_json(site, body, "/api/cameras/nope/webrtc/offer/")
    assert (reply.status, error_of(reply)) == (404, "unknown_camera")
    reply = post_whep(site, offer_sdp.encode(), camera="nope")
    assert (reply.status, error_of(reply)) == (404, "unknown_camera")
    # The witness's own session id, under another camera: refused, and it stays.
    for url in (f"/api/cameras/nope/webrtc/{witness.session}/", f"/whep/nope/{witness.session}"):
        reply = http("DELETE", site.base + url, headers=auth(site))
        assert (reply.status, error_of(reply)) == (404, "unknown_camera"), url


def test_deleting_an_unknown_session_is_404(site):
    session = secrets.token_hex(8)
    reply = http("DELETE", f"{site.base}/api/cameras/default/webrtc/{session}/",
                 headers=auth(site))
    assert (reply.status, error_of(reply)) == (404, "unknown_session")
    reply = http("DELETE", f"{site.base}/whep/default/{session}", headers=auth(site))
    assert (reply.status, error_of(reply)) == (404, "unknown_session")


def tricks(session: str) -> list[str]:
    """Session ids that are not `session` but try hard to look like it, or like a path."""
    return ["..", "%2e%2e", ".", "%00", "*", "%20", "x" * 4000, session + "x", session[:-1],
            session.upper(), "%20" + session, session + "%00", session + "%20", "..;",
            "%252e%252e", "%25", "%ff%fe", "%e2%80%ae" + session]


def test_path_tricks_in_the_session_id_are_unknown_sessions(site, witness):
    for trick in tricks(witness.session):
        for url in (f"/api/cameras/default/webrtc/{trick}/", f"/whep/default/{trick}"):
            reply = http("DELETE", site.base + url, headers=auth(site))
            assert (reply.status, error_of(reply)) == (404, "unknown_session"), url[:80]


@pytest.mark.parametrize("trick", ["..%2f..%2fetc", "a%2fb", "{session}%2f", "%2f{session}",
                                   "{session}/extra"])
def test_slashes_smuggled_into_an_api_session_id_are_a_json_404(site, witness, trick):
    trick = trick.format(session=witness.session)
    reply = http("DELETE", f"{site.base}/api/cameras/default/webrtc/{trick}/",
                 headers=auth(site))
    assert reply.status == 404 and error_of(reply) in ("not_found", "unknown_session"), (
        reply.status, reply.header("Content-Type"), reply.body[:200])


@pytest.mark.parametrize("trick", ["..%2f..%2fetc", "a%2fb", "{session}%2f", "{session}/x"])
def test_slashes_smuggled_into_a_whep_session_id_are_404(site, witness, trick):
    trick = trick.format(session=witness.session)
    reply = http("DELETE", f"{site.base}/whep/default/{trick}", headers=auth(site))
    assert reply.status == 404, (reply.status, reply.body[:200])


def test_whep_with_a_bearer_token(site, loop):
    client = new_client(loop, site, signaling="whep", name="whep")

    async def watch() -> None:
        await client.connect()
        await client.wait_frames(30)

    try:
        loop.run(watch())
        reply = client.offer_reply
        assert reply.status == 201
        assert reply.header("Content-Type").split(";")[0] == "application/sdp"
        location = reply.header("Location")
        assert location == f"/whep/default/{client.session}", location
        assert reply.body.startswith(b"v=0") and b"H264/90000" in reply.body
        assert b"VP8" not in reply.body  # H.264 only
        viewers = site.viewers()
        assert viewers["count"] == 2 and client.session in {s["session"]
                                                            for s in viewers["sessions"]}
        # PATCH (trickle ICE) is not supported, on a live session too; it stays.
        for session in (client.session, "nope"):
            reply = http("PATCH", f"{site.base}/whep/default/{session}",
                         b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
                         {"Content-Type": "application/trickle-ice-sdpfrag", **auth(site)})
            assert (reply.status, error_of(reply)) == (405, "trickle_not_supported")
        assert site.viewers()["count"] == 2
        reply = http("DELETE", site.base + location, headers=auth(site))
        assert reply.status == 200, reply
        assert site.viewers()["count"] == 1
        reply = http("DELETE", site.base + location, headers=auth(site))
        assert (reply.status, error_of(reply)) == (404, "unknown_session")
    finally:
        loop.run(client.close(delete=False))


def test_seed_endpoint_answers_like_the_go_server(site, loop):
    client = new_client(loop, site, signaling="seed", name="seed", auth_scheme="Token")

    async def watch() -> None:
        await client.connect()
        await client.wait_frames(30)

    try:
        loop.run(watch())
        reply = client.offer_reply
        assert reply.status == 200
        answer = reply.json()
        assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
        assert "H264/90000" in answer["sdp"]
        assert site.viewers()["count"] == 2
        assert loop.run(client.delete_session()).status == 204
        assert site.viewers()["count"] == 1
    finally:
        loop.run(client.close(delete=False))


@pytest.mark.parametrize("method,path", [
    ("POST", OFFER_PATH), ("POST", "/api/webrtc/offer"), ("POST", "/whep/default"),
    ("DELETE", "/api/cameras/default/webrtc/{session}/"), ("DELETE", "/whep/default/{session}"),
    ("PATCH", "/whep/default/{session}"),
])
def test_anonymous_requests_are_refused_not_authenticated(site, witness, offer_sdp, method, path):
    url = site.base + path.format(session=witness.session)
    whep = path.startswith("/whep")
    body = None
    if method == "POST":
        body = (offer_sdp.encode() if whep
                else json.dumps({"type": "offer", "sdp": offer_sdp}).encode())
    headers = {"Content-Type": "application/sdp" if whep else "application/json"}
    reply = http(method, url, body, headers)
    # WHEP (RFC 9725) clients get 401 with a Bearer challenge; the JSON API 403.
    expected = 401 if whep else 403
    assert (reply.status, error_of(reply)) == (expected, "not_authenticated"), reply.body
    if whep:
        assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer")
    # A token that is not one is refused too (its own code).
    reply = http(method, url, body, {**headers, "Authorization": "Bearer " + "0" * 40})
    assert reply.status in (401, 403) and error_of(reply) == "authentication_failed"


def test_session_auth_needs_the_csrf_token(site, loop, offer_sdp, witness):
    user = Client(site.base)
    user.login(site.username, site.password)
    body = json.dumps({"type": "offer", "sdp": offer_sdp}).encode()
    json_type = {"Content-Type": "application/json"}
    status, _, reply = user.request("POST", OFFER_PATH, body, json_type)
    assert status == 403, reply
    assert json.loads(reply)["error"] == "permission_denied" and b"CSRF" in reply
    status, _, reply = user.request("DELETE", f"/api/cameras/default/webrtc/{witness.session}/")
    assert status == 403 and b"CSRF" in reply  # and the witness stays (checked after)
    assert site.viewers()["count"] == 1

    # With the token (as the live page sends it) the same offer is answered.
    csrf = {"X-CSRFToken": user.csrf(), "Referer": site.base + "/"}
    status, _, reply = user.request("POST", OFFER_PATH, body, {**json_type, **csrf})
    assert status == 200, reply
    session = json.loads(reply)["session"]
    assert site.viewers()["count"] == 2
    status, _, reply = user.request("DELETE", f"/api/cameras/default/webrtc/{session}/",
                                    headers=csrf)
    assert status == 204, reply
    assert site.viewers()["count"] == 1


def test_after_all_that_every_slot_is_still_free(site, loop, witness):
    """No refused offer kept a slot: MAX_VIEWERS - 1 newcomers join next to the witness, the
    one after them gets 503 max_viewers; and the witness saw the whole module at full rate."""
    clients = [new_client(loop, site, name=f"late{i}") for i in range(MAX_VIEWERS - 1)]

    async def fill() -> SignalingError:
        for client in clients:
            await client.connect()
        extra = WebRtcClient(site.base, site.token, name="one-too-many")
        try:
            await extra.connect()
        except SignalingError as exc:
            return exc
        finally:
            await extra.close()
        raise AssertionError("an offer beyond PETCAM_MAX_VIEWERS was answered")

    try:
        refused = loop.run(fill())
        assert refused.status == 503 and refused.body["error"] == "max_viewers"
        assert site.viewers()["count"] == MAX_VIEWERS
    finally:
        for client in clients:
            loop.run(client.close())
    wait_for(lambda: site.viewers()["count"] == 1, 5, "the newcomers to leave")
    end = camera_mark(site)
    camera, seen = camera_fps(witness.watch_mark, end), witness.fps(witness.watch_mark[0], end[0])
    assert camera > 5 and seen >= MIN_SHARE * camera, ("the witness lost frames", camera, seen)

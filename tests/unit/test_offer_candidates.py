"""ICE candidates in an offer are instructions to send STUN: capped, and never to this host.

Issue 14 item 7: an offer with 1000 candidates was accepted, and 50 candidates on
127.0.0.1 ports got 266 STUN packets from the server. The rules are checked here on
exact inputs (streaming/offer_validation.py); tests/integration/test_candidate_stun.py
counts the packets a real site sends.
"""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from streaming.media.types import MediaError
from streaming.media.webrtc.session import require_dtls_fingerprints
from streaming.offer_validation import CandidateRules, filter_candidates, validate_offer_sdp

MAX_BYTES = 1024 * 1024
HEAD = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n")


def candidate(address: str, port: int = 50000, n: int = 1, kind: str = "host") -> str:
    return f"a=candidate:{n} 1 udp 2122260223 {address} {port} typ {kind}"


def offer(*candidates: str) -> str:
    return HEAD + "".join(c + "\r\n" for c in candidates) + "a=end-of-candidates\r\n"


def candidates_of(sdp: str) -> list[str]:
    return [line for line in sdp.split("\r\n") if line.startswith("a=candidate:")]


def test_an_offer_with_1000_candidates_is_refused():
    sdp = offer(*(candidate("192.0.2.7", 10000 + i, i) for i in range(1000)))
    with pytest.raises(MediaError) as refused:
        validate_offer_sdp(sdp, MAX_BYTES)
    assert refused.value.code == "invalid_sdp"
    assert refused.value.detail == ("An offer may carry at most 32 ICE candidates; "
                                    "this one has 1000.")


def test_the_cap_is_a_setting_and_counts_every_candidate_line():
    rules = CandidateRules(max_candidates=3)
    three = offer(*(candidate("192.0.2.7", 10000 + i, i) for i in range(3)))
    assert candidates_of(validate_offer_sdp(three, MAX_BYTES, rules)) == candidates_of(three)
    # Candidates that would be dropped count too: the cap bounds the parsing as well.
    four = offer(*candidates_of(three), candidate("127.0.0.1", 9))
    with pytest.raises(MediaError, match="at most 3 ICE candidates; this one has 4"):
        validate_offer_sdp(four, MAX_BYTES, rules)


def test_50_candidates_on_loopback_ports_are_all_dropped():
    sdp = offer(*(candidate("127.0.0.1", 40000 + i, i) for i in range(50)))
    rules = CandidateRules(max_candidates=64)
    kept = validate_offer_sdp(sdp, MAX_BYTES, rules)
    assert candidates_of(kept) == []
    assert kept == offer()  # nothing else touched


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1",  # loopback
    "169.254.10.20", "fe80::1", "fe80::1%eth0",  # link-local
    "0.0.0.0", "::",  # unspecified
    "::ffff:127.0.0.1", "::ffff:169.254.1.1", "::ffff:0.0.0.0",  # the same, IPv4-mapped
    "224.0.0.251", "ff02::1", "255.255.255.255",  # multicast, broadcast
    "intranet.example", "localhost",  # DNS names: aioice would resolve them
])
def test_forbidden_addresses_are_dropped_the_rest_kept(address):
    good = [candidate("192.0.2.7", 50000, 1), candidate("10.1.2.3", 50001, 2),
            candidate("2001:db8::5", 50002, 3), candidate("203.0.113.9", 3478, 4, "srflx"),
            candidate("3f0c1a2b-uuid.local", 50003, 5)]  # mDNS: the worker's business
    sdp = offer(good[0], candidate(address, 9, 9), *good[1:])
    assert candidates_of(validate_offer_sdp(sdp, MAX_BYTES)) == good


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "169.254.10.20", "fe80::1"])
def test_loopback_and_link_local_are_kept_when_the_setting_allows_them(address):
    sdp = offer(candidate(address))
    kept = validate_offer_sdp(sdp, MAX_BYTES, CandidateRules(allow_local=True))
    assert candidates_of(kept) == [candidate(address)]


@pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.251", "intranet.example"])
def test_the_setting_never_allows_unspecified_multicast_or_names(address):
    kept = validate_offer_sdp(offer(candidate(address)), MAX_BYTES,
                              CandidateRules(allow_local=True))
    assert candidates_of(kept) == []


@pytest.mark.parametrize("port", [0, 65536, 99999, "1" * 4301, "0" * 30 + "80"])
def test_a_candidate_with_no_such_port_is_dropped(port):
    """A 4,301-digit port was a 500 (int() refuses more than 4,300 digits; found by
    benchmarks/hostile_probe.py)."""
    assert candidates_of(validate_offer_sdp(offer(candidate("192.0.2.7", port)),
                                            MAX_BYTES)) == []


@pytest.mark.parametrize("line", [
    "a=candidate:1 1 udp 2122260223 192.0.2.7",  # too short
    "a=candidate:1 1 udp 2122260223 192.0.2.7 50000 host",  # no "typ"
    "a=candidate:1 x udp 2122260223 192.0.2.7 50000 typ host",  # component not a number
    "a=candidate:1 1 udp 2122260223 192.0.2.7 port typ host",  # port not a number
    "a=candidate:1 1 udp 2122260223 192.0.2.7 5\u00b2 typ host",  # digits int() refuses
    "a=candidate:1 \u00b9 udp 2122260223 192.0.2.7 50000 typ host",
])
def test_a_line_that_is_no_candidate_is_refused(line):
    with pytest.raises(MediaError) as refused:
        validate_offer_sdp(offer(line), MAX_BYTES)
    assert refused.value.code == "invalid_sdp"
    assert refused.value.detail.startswith("Not an ICE candidate line")


@pytest.mark.parametrize("separator", ["\n", "\r", "\x1c", "\u2028", "\x85"])
def test_no_candidate_hides_behind_a_line_break_aiortc_also_splits_on(separator):
    hidden = offer(candidate("192.0.2.7") + separator + candidate("127.0.0.1", n=2))
    assert candidates_of(filter_candidates(hidden, CandidateRules())) == [
        candidate("192.0.2.7")]


def test_lf_offers_come_out_crlf():
    lf = offer(candidate("127.0.0.1"), candidate("192.0.2.7", n=2)).replace("\r\n", "\n")
    assert filter_candidates(lf, CandidateRules()) == offer(candidate("192.0.2.7", n=2))


async def aiortc_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    return pc.localDescription.sdp


def test_a_real_aiortc_offer_passes_untouched():
    sdp = asyncio.run(aiortc_offer())
    # This machine's addresses (aioice leaves out 127.0.0.1 and scoped link-local ones).
    assert validate_offer_sdp(sdp, MAX_BYTES) == sdp


@pytest.mark.parametrize("drop", ["a=fingerprint:", "a=setup:"])
def test_an_offer_without_dtls_fingerprint_or_setup_is_refused_before_aiortc_answers(drop):
    """aiortc answered such an offer, then failed an assertion in its connect task ("Task
    exception was never retrieved") while the session held a slot (hostile_probe.py)."""
    sdp = asyncio.run(aiortc_offer())
    require_dtls_fingerprints(sdp)  # a real offer has both
    stripped = "".join(line for line in sdp.splitlines(keepends=True)
                       if not line.startswith(drop))
    with pytest.raises(ValueError, match="no DTLS fingerprint"):
        require_dtls_fingerprints(stripped)

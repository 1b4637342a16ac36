"""HLS (RFC 8216, fMP4) playlist of a recording, straight from its keyframe index.

No remuxing: the recording already is a fragmented MP4, so the init segment is its
`ftyp`+`moov` (#EXT-X-MAP with a BYTERANGE) and each media segment is a run of whole
`moof`+`mdat` fragments addressed with #EXT-X-BYTERANGE in the same file. Fragments
are one GOP each (0.5-2 s); consecutive ones are joined into segments of about
TARGET_SECONDS so a player makes fewer requests. A finished recording is a VOD
playlist; one still being written is an EVENT playlist without #EXT-X-ENDLIST
(players reload it and see the new fragments).
"""

from __future__ import annotations

import math

from .keyframe_index import Fragment, KeyframeIndex

TARGET_SECONDS = 4.0


def segments(fragments: list[Fragment], target: float = TARGET_SECONDS) -> list[list[Fragment]]:
    """Consecutive fragments joined until a segment lasts at least `target` seconds."""
    out: list[list[Fragment]] = []
    run: list[Fragment] = []
    for fragment in fragments:
        if run and run[-1].offset + run[-1].size != fragment.offset:
            out.append(run)  # not contiguous (cannot happen in our files): never merge
            run = []
        run.append(fragment)
        if sum(f.duration for f in run) >= target:
            out.append(run)
            run = []
    if run:
        out.append(run)
    return out


def playlist(index: KeyframeIndex, media_uri: str, *, finished: bool,
             target: float = TARGET_SECONDS) -> str:
    """The media playlist; `media_uri` is the recording file's URL (relative is fine)."""
    groups = segments(index.fragments, target)
    durations = [sum(f.duration for f in g) for g in groups]
    # EXT-X-TARGETDURATION: every EXTINF rounded to the nearest integer must be <= it
    longest = max([round(d) for d in durations], default=0)
    target_duration = max(1, longest, math.ceil(target) if not finished else 1)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if finished else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",  # every segment starts at a keyframe
        f'#EXT-X-MAP:URI="{media_uri}",BYTERANGE="{index.init_size}@0"',
    ]
    for group, duration in zip(groups, durations, strict=True):
        first, last = group[0], group[-1]
        length = last.offset + last.size - first.offset
        lines += [f"#EXTINF:{duration:.6f},", f"#EXT-X-BYTERANGE:{length}@{first.offset}",
                  media_uri]
    if finished:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"

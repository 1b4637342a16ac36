"""FramePacer: when the shm reader polls next (pure arithmetic on given clocks), and the
paced reader against a real writer process: every frame, none torn, few polls."""

from __future__ import annotations

import multiprocessing
import time

from streaming.media.shm import segment as shm_segment
from streaming.media.shm.pacer import FramePacer
from streaming.media.shm.stream_reader import FrameReader
from tests.support.poll_counter import PollCounter
from tests.unit.test_shm_reader import _race_writer, crc_ok

MS = 1_000_000
T0 = 5_000 * MS  # some CLOCK_MONOTONIC time


def steady(pacer: FramePacer, frames: int, interval_ms: float = 33.3, lag_ms: float = 2.0,
           start: int = T0) -> int:
    """Feed `frames` frames at a steady cadence; returns the last camera stamp."""
    cam = start
    for n in range(frames):
        cam = start + int(n * interval_ms * MS)
        pacer.frame_seen(cam, cam + int(lag_ms * MS), n + 1)
    return cam


def test_no_frame_yet_polls_at_the_late_rate():
    pacer = FramePacer()
    assert pacer.due_ns(33) is None
    assert pacer.next_poll_delay(T0, 33) == pacer.late_poll


def test_sleeps_until_just_before_the_next_frame_is_due():
    pacer = FramePacer(early=0.003)
    cam = steady(pacer, 10, interval_ms=33, lag_ms=2)
    seen = cam + 2 * MS
    assert pacer.due_ns(33) == cam + 2 * MS + 33 * MS
    # Right after the newest frame: sleep to 3 ms before the next one is due.
    assert abs(pacer.next_poll_delay(seen, 33) - 0.030) < 1e-6


def test_polls_finely_around_the_due_time_then_backs_off():
    pacer = FramePacer(fine_poll=0.001, early=0.003, late_poll=0.004)
    cam = steady(pacer, 10, interval_ms=33, lag_ms=2)
    due = cam + 35 * MS
    for t in (due - 3 * MS, due, due + 10 * MS, due + 32 * MS):
        assert pacer.next_poll_delay(t, 33) == 0.001
    # More than an interval late (a dropped frame): coarser, but still a few ms.
    assert pacer.next_poll_delay(due + 34 * MS, 33) == 0.004


def test_until_two_stamps_the_header_interval_counts_and_zero_means_30_fps():
    pacer = FramePacer()
    pacer.frame_seen(T0, T0 + 2 * MS, 1)
    assert pacer.due_ns(0) == T0 + 2 * MS + 1_000_000_000 // 30
    assert pacer.due_ns(50) == T0 + 2 * MS + 50 * MS


def test_the_cadence_comes_from_the_camera_stamps():
    """frame_interval_ms is whole milliseconds (33 for 30 fps): projected over a second
    of frames it would be 10 ms off, so the stamps' own cadence is used."""
    pacer = FramePacer()
    cam = steady(pacer, 30, interval_ms=1000 / 30, lag_ms=2)
    assert abs(pacer.interval_ns(33) - 1_000_000_000 // 30) < 1000
    assert abs(pacer.due_ns(33) - (cam + 2 * MS + 1_000_000_000 // 30)) < 1000


def test_a_late_stamp_does_not_delay_the_next_on_time_frame():
    """The writer woke 6 ms late for one frame (stamp and write late); the next one is on
    its usual schedule, and the pacer expects it there, not 6 ms later."""
    pacer = FramePacer()
    cam = steady(pacer, 10, interval_ms=33, lag_ms=2)
    late = cam + 33 * MS + 6 * MS
    pacer.frame_seen(late, late + 2 * MS, 11)
    on_time = cam + 2 * 33 * MS
    assert pacer.due_ns(33) <= on_time + 2 * MS


def test_the_smallest_recent_lag_wins():
    """An IDR read late must not push the prediction late for the next P-frame."""
    pacer = FramePacer()
    steady(pacer, 5, interval_ms=33, lag_ms=2)
    cam = T0 + 5 * 33 * MS
    pacer.frame_seen(cam, cam + 12 * MS, 6)  # a slow one
    assert pacer.due_ns(33) == cam + 2 * MS + 33 * MS


def test_never_sleeps_past_one_interval_after_the_last_frame_read():
    """Whatever the stamps say (another clock, a jump), due <= last read + interval."""
    pacer = FramePacer(max_sleep=10.0)
    pacer.frame_seen(10**15, T0, 1)  # camera stamp from some other clock, far ahead
    pacer.frame_seen(10**15 + 33 * MS, T0 + 33 * MS, 2)
    delay = pacer.next_poll_delay(T0 + 33 * MS, 33)
    assert 0 < delay <= 0.033


def test_a_header_claiming_a_slower_rate_than_the_stamps_show_is_not_believed():
    pacer = FramePacer(early=0.003)
    cam = steady(pacer, 10, interval_ms=10, lag_ms=1)  # 100 fps
    assert pacer.interval_ns(1000) == 10 * MS
    assert abs(pacer.next_poll_delay(cam + MS, 1000) - 0.007) < 1e-6


def test_a_faster_camera_is_followed_at_once():
    """15 fps, then 30 fps: the next frame is expected one new step later, not after the
    window's average (66 ms)."""
    pacer = FramePacer()
    cam = steady(pacer, 10, interval_ms=66, lag_ms=1)
    pacer.frame_seen(cam + 33 * MS, cam + 34 * MS, 11)
    assert pacer.due_ns(0) <= cam + 34 * MS + 33 * MS


def test_a_garbage_interval_never_sleeps_long():
    pacer = FramePacer(max_sleep=0.1)
    pacer.frame_seen(T0, T0, 1)
    assert pacer.next_poll_delay(T0, 0xFFFFFFFF) <= 0.1


def test_a_stalled_camera_is_polled_slowly():
    pacer = FramePacer(idle_after=1.0, idle_poll=0.01)
    cam = steady(pacer, 5)
    assert pacer.next_poll_delay(cam + 2_000 * MS, 33) == 0.01


def test_gaps_in_frame_numbers_do_not_halve_the_cadence():
    pacer = FramePacer()
    pacer.frame_seen(T0, T0, 1)
    pacer.frame_seen(T0 + 66 * MS, T0 + 66 * MS, 3)  # frame 2 was dropped by the camera
    assert pacer.interval_ns(0) == 33 * MS


def test_a_camera_restart_forgets_the_old_cadence():
    pacer = FramePacer()
    steady(pacer, 3, interval_ms=20)
    pacer.frame_seen(MS, T0 + 200 * MS, 1)  # daemon restarted: stamps and numbers reset
    assert pacer.interval_ns(33) == 33 * MS
    assert pacer.due_ns(33) == T0 + 200 * MS + 33 * MS


def test_the_paced_reader_gets_every_frame_untorn_with_few_polls(shm_name):
    """A writer process at 30 fps: every frame arrives complete, and the reader polls a
    handful of times per frame instead of one per millisecond (~33)."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_race_writer, args=(shm_name, 90, 30.0, ready))
    reader = FrameReader(shm_name)
    polls = PollCounter(reader)
    proc.start()
    assert ready.wait(10)
    got = []
    give_up = time.monotonic() + 30
    for frame in reader.frames(lambda: time.monotonic() > give_up):
        got.append(frame)
        if frame.header.frame_number == 90:
            break
    proc.join(5)
    reader.close()
    numbers = [f.header.frame_number for f in got]
    assert all(crc_ok(f.data) for f in got), "a torn frame was yielded"
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert len(got) >= 88
    assert reader.stats.gaps == 0
    # 1 ms polling would be ~33 per frame; a loaded machine delays wake-ups (fewer
    # polls) and the writer's slot copies (a few more), not 3x more.
    assert polls.count / len(got) < 12, f"{polls.count} polls for {len(got)} frames"



def simulate(pacer: FramePacer, ready_ns: list[int], start_ns: int) -> tuple[list[int], int]:
    """A reader loop on a simulated clock: frame k is readable from ready_ns[k] (camera
    stamp 2 ms before). Returns each frame's read delay and the number of polls."""
    now, polls, delays, k = start_ns, 0, [], 0
    while k < len(ready_ns):
        polls += 1
        if now >= ready_ns[k]:
            while k + 1 < len(ready_ns) and now >= ready_ns[k + 1]:
                delays.append(now - ready_ns[k])
                k += 1
            delays.append(now - ready_ns[k])
            pacer.frame_seen(ready_ns[k] - 2 * MS, now, k + 1)
            k += 1
        now += int(pacer.next_poll_delay(now, 33) * 1e9)
    return delays, polls


def test_a_reader_that_started_late_catches_up_within_a_few_frames():
    """The first frame was read 20 ms after it was ready (the reader was busy): waking
    at the lag that frame shows would keep every later frame 20 ms late."""
    ready = [T0 + k * 1_000_000_000 // 30 for k in range(60)]
    delays, polls = simulate(FramePacer(), ready, T0 + 20 * MS)
    assert delays[0] == 20 * MS
    assert all(d <= MS for d in delays[5:]), [d // 1000 for d in delays]
    assert polls < 60 * 6


def test_steady_frames_are_read_within_a_fine_poll_with_few_polls():
    ready = [T0 + k * 1_000_000_000 // 30 for k in range(300)]
    delays, polls = simulate(FramePacer(), ready, T0)
    assert max(delays) <= MS
    assert polls / len(ready) < 6


def test_relaxed_polls_once_just_after_the_due_time_then_at_the_idle_rate():
    pacer = FramePacer(fine_poll=0.001, early=0.003, idle_poll=0.01)
    cam = steady(pacer, 10, interval_ms=33, lag_ms=2)
    due = cam + 35 * MS
    assert abs(pacer.relaxed_delay(cam + 2 * MS, 33) - 0.036) < 1e-9  # 3 ms after due
    assert pacer.relaxed_delay(due, 33) == 0.01  # not there yet: nobody waits, no hurry
    assert FramePacer().relaxed_delay(T0, 33) == FramePacer().idle_poll  # no frame yet


def read_frames(shm_name: str, frames: int, demand) -> tuple[list, float, int]:
    """(frames read, polls per frame, early commits) against a writer process at 30 fps,
    up to the one before its last (without the probe the last is never proven)."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_race_writer, args=(shm_name, frames, 30.0, ready))
    reader = FrameReader(shm_name)
    polls = PollCounter(reader)
    proc.start()
    assert ready.wait(10)
    got = []
    give_up = time.monotonic() + 30
    for frame in reader.frames(lambda: time.monotonic() > give_up, demand=demand):
        got.append(frame)
        if frame.header.frame_number == frames - 1:
            break
    proc.join(5)
    reader.close()
    return got, polls.count / max(1, len(got)), reader.stats.early_commits


def test_with_no_demand_the_reader_relaxes_and_still_gets_every_frame(shm_name):
    """No viewer, no recording: no writer probe (no /proc reads), fewer polls; every frame
    still arrives untorn (the GOP cache stays whole). With demand it proves frames early."""
    got, relaxed_polls, early = read_frames(shm_name, 60, lambda: False)
    numbers = [f.header.frame_number for f in got]
    assert all(crc_ok(f.data) for f in got), "a torn frame was yielded"
    assert numbers == sorted(numbers) and len(got) >= 57
    assert early == 0  # the probe was not used
    other = shm_name + "_eager"
    try:
        _, eager_polls, early = read_frames(other, 60, lambda: True)
    finally:
        shm_segment.unlink(other)
    assert early > 0
    print(f"polls per frame: relaxed {relaxed_polls:.1f}, eager {eager_polls:.1f}")
    # Eager: ~4-5 polls a frame (sleep to just before the due time, then every 1 ms);
    # relaxed ~1 (one just after it, one more when the writer is late).
    assert relaxed_polls < 3

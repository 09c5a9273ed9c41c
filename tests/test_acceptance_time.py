"""The acceptance time as a duration: events of a key at the measured rate, re-read by count."""

from __future__ import annotations

from stream_detect.acceptance_time import AcceptanceTime
from stream_detect.event_rate import EventRate
from stream_detect.settings import DetectorSettings

TIMED = DetectorSettings(timestamp_field="t", accept_after_seconds=600.0)


def test_without_a_rate_the_count_stands_and_is_never_re_read() -> None:
    acceptance = AcceptanceTime(TIMED, None)
    assert not acceptance.timed and acceptance.accept_after == TIMED.accept_after
    assert acceptance.rows_until_due(10**9, 4096) == 4096 and not acceptance.due(10**12)


def test_a_duration_of_zero_or_no_acceptance_at_all_is_not_timed() -> None:
    for settings in (
        DetectorSettings(timestamp_field="t", accept_after_seconds=0.0),
        DetectorSettings(timestamp_field="t", accept_after=0),
    ):
        assert not AcceptanceTime(settings, EventRate()).timed


def test_re_read_at_10_100_1000_then_every_1000_events() -> None:
    rate = EventRate()
    acceptance = AcceptanceTime(TIMED, rate)
    rate.observe([300.0 * i for i in range(5000)])  # 5-minute metrics
    seen = []
    events = 0
    while events < 4000:
        events += acceptance.rows_until_due(events, 4000 - events)
        if acceptance.due(events):
            acceptance.reread(events)
            seen.append(events)
    assert seen == [10, 100, 1000, 2000, 3000, 4000]
    assert acceptance.accept_after == 2  # 600 s of 5-minute rows


def test_the_count_stays_until_the_rate_is_known_and_divides_among_keys() -> None:
    rate = EventRate()
    acceptance = AcceptanceTime(TIMED, rate)
    rate.observe([5.0])
    acceptance.reread(10)
    assert acceptance.accept_after == TIMED.accept_after
    rate.observe([5.0 + 0.1 * i for i in range(1, 100)])  # 10 Hz: ten keys at 1 Hz
    acceptance.reread(100, keys=10)
    assert acceptance.accept_after == 600


def test_the_state_round_trips() -> None:
    rate = EventRate()
    rate.observe([0.0, 300.0])
    first = AcceptanceTime(TIMED, rate)
    first.reread(10)
    second = AcceptanceTime(TIMED, rate)
    second.restore(first.to_dict())
    assert second.to_dict() == first.to_dict() == {"accept_after": 2, "next_rate_at": 100}

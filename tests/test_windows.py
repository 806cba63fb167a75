"""The windowing rule shared by the feature tables and the timelines."""

from genrekit.audio.windows import TAIL_TOLERANCE, window_bounds

SR = 100  # 100 samples per second keeps the numbers readable


def test_whole_windows_only_and_long_tail_dropped():
    assert window_bounds(1050, SR, 3.0) == [(0, 300), (300, 600), (600, 900)]


def test_short_tail_is_absorbed_into_the_last_window():
    tail = int(TAIL_TOLERANCE * 300)
    assert window_bounds(900 + tail, SR, 3.0)[-1] == (600, 900 + tail)
    assert window_bounds(3001, SR, 30.0) == [(0, 3001)]


def test_signal_shorter_than_a_window_is_one_window():
    assert window_bounds(120, SR, 3.0) == [(0, 120)]


def test_cover_end_adds_a_window_ending_at_the_end():
    bounds = window_bounds(1050, SR, 3.0, 1.5, cover_end=True)
    assert bounds[0] == (0, 300) and bounds[-1] == (750, 1050)
    starts = [s for s, _ in bounds]
    assert starts == sorted(starts)
    assert all(stop - start == 300 for start, stop in bounds)


def test_overlapping_hop_and_whole_signal():
    assert window_bounds(600, SR, 3.0, 1.0) == [(0, 300), (100, 400), (200, 500), (300, 600)]
    assert window_bounds(600, SR, None) == [(0, 600)]
    assert window_bounds(0, SR, 3.0) == []

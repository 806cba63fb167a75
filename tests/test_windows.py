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


def test_a_sub_second_tail_moves_the_last_overlapping_window_instead_of_adding_a_sliver():
    # 10-s windows every 5 s over 30.013 s (at 1000 Hz): not 20.0 and 20.013, but 20.013 alone
    bounds = window_bounds(30013, 1000, 10.0, 5.0, cover_end=True, exact=True)
    assert bounds == [(0, 10000), (5000, 15000), (10000, 20000), (15000, 25000), (20013, 30013)]
    # a tail of a second or more still gets its own end-aligned window
    assert window_bounds(31000, 1000, 10.0, 5.0, cover_end=True, exact=True)[-2:] == [(20000, 30000), (21000, 31000)]
    # windows that do not overlap cannot move without a gap: the end-aligned one is added
    assert window_bounds(950, SR, 3.0, cover_end=True, exact=True)[-2:] == [(600, 900), (650, 950)]
    # one window: moving it would uncover the start
    assert window_bounds(1050, SR, 10.0, 5.0, cover_end=True, exact=True) == [(0, 1000), (50, 1050)]

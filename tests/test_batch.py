"""The batch runner: failures become records, crashes are pinned on one item, pools agree with in-process."""

import os
import warnings

from genrekit.errors import AudioError
from genrekit.engines.batch import CRASH_REASON, Summary, run_batch


def _work(item: int) -> int:
    # Module-level, so that spawned pool processes can import it.
    if item == 3:
        raise AudioError(f"song{item}.wav", "too short: 0.010 s, at least 0.093 s needed")
    if item == 4:
        raise ValueError("four is bad")
    if item == 5:
        warnings.warn("five is quiet")
    if item == 6 and os.environ.get("_GENREKIT_TEST_CRASH") == "1":
        os._exit(9)  # a worker dying hard, as on a decoder segfault
    return item * 10


def _check(results, crashed: bool) -> Summary:
    summary = Summary("test", total=8)
    for r in results:
        summary.record(r)
    failed = {f.item: f.reason for f in summary.failed}
    assert failed["3"] == "too short: 0.010 s, at least 0.093 s needed"  # AudioError: its problem
    assert failed["4"] == "ValueError: four is bad"
    if crashed:
        assert failed["6"] == CRASH_REASON
    assert summary.done == 8 - len(failed)
    assert summary.warnings == ["5: five is quiet"]
    assert "test: 8 files, " in str(summary) and "  failed: 4: ValueError: four is bad" in str(summary)
    return summary


def test_in_process_keeps_order_and_records_failures():
    results = list(run_batch(range(8), _work, jobs=1))
    assert [r.item for r in results] == list(range(8))
    assert [r.value for r in results if r.ok] == [0, 10, 20, 50, 60, 70]
    _check(results, crashed=False)


def test_pool_gives_the_same_results_and_survives_a_dying_worker(monkeypatch):
    pooled = list(run_batch(range(8), _work, jobs=2))
    assert sorted((r.item, r.value) for r in pooled if r.ok) == [(i, 10 * i) for i in (0, 1, 2, 5, 6, 7)]
    _check(pooled, crashed=False)

    monkeypatch.setenv("_GENREKIT_TEST_CRASH", "1")  # read by the spawned workers
    crashed = list(run_batch(range(8), _work, jobs=2))
    assert sorted(r.item for r in crashed) == list(range(8))  # every item reported once
    _check(crashed, crashed=True)  # only item 6 blamed; its neighbours in flight were rerun

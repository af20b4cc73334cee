import asyncio

import pytest

from podium.telemetry import metrics


class _Recorder:
    def __init__(self) -> None:
        self.incs: list[tuple[float, dict[str, str]]] = []

    def inc(self, value: float, tags: dict[str, str]) -> None:
        self.incs.append((value, tags))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    rec = _Recorder()
    monkeypatch.setattr(metrics, "_metric", lambda name: rec)
    # Counts an earlier test left pending on the session's loop (and its flush) are not this test's.
    monkeypatch.setattr(metrics, "_counts", {})
    monkeypatch.setattr(metrics, "_flush_on", None)
    return rec


async def test_counts_on_a_loop_reach_ray_summed_per_series_within_the_flush_interval(recorder: _Recorder,
                                                                                     monkeypatch) -> None:
    monkeypatch.setattr(metrics, "COUNT_FLUSH_S", 0.01)
    for _ in range(3):
        metrics.count("podium_unlocks", status="accepted", reason="")
    metrics.count("podium_unlocks", 2, status="rejected", reason="invalid")
    metrics.count("podium_unlocks", 0, status="accepted", reason="")  # nothing to add
    assert recorder.incs == []  # not one record per call
    await asyncio.sleep(0.05)
    assert sorted(recorder.incs, key=lambda x: x[0]) == [(2, {"status": "rejected", "reason": "invalid"}),
                                                         (3, {"status": "accepted", "reason": ""})]


def test_counts_off_a_loop_are_recorded_at_once(recorder: _Recorder) -> None:
    metrics.count("podium_pushes", 4, outcome="sent")
    assert recorder.incs == [(4, {"outcome": "sent"})]

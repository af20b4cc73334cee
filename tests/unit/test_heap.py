import gc

from gateway.heap import HeapFreezer


class FakeGc:
    """A heap of `frozen` + `young` objects, `garbage` of them cyclic garbage among the frozen."""

    def __init__(self) -> None:
        self.frozen = 0
        self.young = 0
        self.garbage = 0
        self.full_passes = 0

    def collect(self) -> int:
        if self.frozen:
            return 0  # the frozen objects are out of reach: only the young are walked
        self.full_passes += 1
        found, self.garbage = self.garbage, 0
        self.young -= found
        return found

    def freeze(self) -> None:
        self.frozen += self.young
        self.young = 0

    def unfreeze(self) -> None:
        self.young += self.frozen
        self.frozen = 0

    def freezer(self) -> HeapFreezer:
        return HeapFreezer(growth=0.5, collect=self.collect, freeze=self.freeze, unfreeze=self.unfreeze,
                           frozen=lambda: self.frozen)


def test_survivors_are_frozen_and_only_a_grown_heap_is_walked_whole() -> None:
    heap = FakeGc()
    heap.young = 1000
    freezer = heap.freezer()
    assert not freezer.step() and heap.frozen == 1000 and freezer.baseline == 1000
    heap.young = 400  # sockets opened: 1,400 frozen is within 1.5x
    assert not freezer.step() and heap.frozen == 1400
    heap.garbage = 300  # closed sockets' cycles, among the frozen
    heap.young = 200
    assert not freezer.step() and heap.frozen == 1600
    assert freezer.step()  # 1,600 > 1,500: unfreeze, collect all, freeze again
    assert heap.frozen == 1300 and freezer.baseline == 1300 and freezer.collected == 300
    assert freezer.compactions == 1 and heap.full_passes == 2  # the first step walks all too
    assert not freezer.step()


def test_the_real_gc_is_left_frozen_and_can_be_undone() -> None:
    freezer = HeapFreezer()
    try:
        freezer.step()
        assert gc.get_freeze_count() > 0 and freezer.status()["frozen"] == gc.get_freeze_count()
    finally:
        gc.unfreeze()

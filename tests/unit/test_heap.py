import gc

from podium.gateway.heap import HeapFreezer


class FakeGc:
    """A heap of frozen, old (unfrozen gen 2) and young objects; `garbage` of the frozen ones and `loose` of the
    unfrozen ones are cyclic garbage."""

    def __init__(self) -> None:
        self.frozen = self.old = self.young = self.garbage = self.loose = 0
        self.walked: list[int] = []  # objects each collection walked

    def collect(self, generation: int) -> int:
        if generation < 2:
            self.walked.append(self.young)
            self.old, self.young = self.old + self.young, 0
            return 0
        self.walked.append(self.young + self.old)
        found, self.loose = self.loose, 0
        self.old, self.young = self.old + self.young - found, 0
        return found

    def freeze(self) -> None:
        self.frozen, self.old, self.young = self.frozen + self.old + self.young, 0, 0

    def unfreeze(self) -> None:
        self.old, self.frozen = self.old + self.frozen, 0
        self.loose, self.garbage = self.loose + self.garbage, 0

    def freezer(self) -> HeapFreezer:
        return HeapFreezer(collect=self.collect, freeze=self.freeze, unfreeze=self.unfreeze)


def test_a_step_walks_only_the_young_and_a_compaction_frees_frozen_garbage() -> None:
    heap = FakeGc()
    heap.old = 100_000  # the start-up heap
    freezer = heap.freezer()
    freezer.step(compact=True)
    assert heap.frozen == 100_000 and heap.walked == [100_000]
    for _ in range(5):  # sockets open: their objects are frozen, never walked again
        heap.young = 700
        freezer.step()
    assert heap.frozen == 103_500 and heap.walked[1:] == [700] * 5
    heap.garbage = 2_000  # closed sockets' cycles, among the frozen
    freezer.step(compact=True)
    assert heap.frozen == 101_500 and freezer.collected == 2_000 and freezer.compactions == 2


def test_a_step_frees_cycles_that_died_since_the_last_step_instead_of_freezing_them() -> None:
    heap = FakeGc()
    freezer = heap.freezer()
    heap.young, heap.loose = 700, 300  # 300 of what came since the last step are already cyclic garbage
    freezer.step()
    assert heap.frozen == 400 and freezer.collected == 300 and freezer.compactions == 0


def test_the_real_gc_is_left_frozen() -> None:
    freezer = HeapFreezer()
    try:
        freezer.step()
        assert gc.get_freeze_count() > 0 and freezer.status()["freezes"] == 1
    finally:
        gc.unfreeze()

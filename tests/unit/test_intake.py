from podium.core.catalog import Catalog
from podium.core.intake import plan_intake
from podium.wire.messages import AckStatus, Unlock, UnlockBatch

CATALOG = Catalog({"g": {"a": 10, "b": 0}})


def test_unknown_ids_are_rejected_and_repeats_in_a_batch_are_duplicates() -> None:
    batch = UnlockBatch.of([
        Unlock("p", "g", "a"), Unlock("p", "nope", "a"), Unlock("p", "g", "zzz"), Unlock("p", "g", "a"),
        Unlock("q", "g", "b"),
    ])
    plan = plan_intake(batch, CATALOG)
    assert plan.statuses == [None, AckStatus.REJECTED, AckStatus.REJECTED, AckStatus.DUPLICATE, None]
    assert plan.reasons[1:3] == ["unknown_game", "unknown_achievement"]
    assert plan.journal_rows == [0, 4] and plan.points == [10, 0]
    assert plan.unknown_seen


def test_clean_batch_sees_nothing_unknown() -> None:
    assert not plan_intake(UnlockBatch.of([Unlock("p", "g", "a")]), CATALOG).unknown_seen


def test_concat_keeps_every_column_in_order() -> None:
    a = UnlockBatch.of([Unlock("p", "g", "a", "eu", 1)])
    b = UnlockBatch.of([Unlock("q", "g", "b"), Unlock("r", "h", "c", "na")])
    merged = UnlockBatch.concat([a, b])
    assert merged == UnlockBatch(["p", "q", "r"], ["g", "g", "h"], ["a", "b", "c"], ["eu", None, "na"], [1, None, None])

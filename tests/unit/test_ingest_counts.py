"""The gateway's ack counters: stat update items are told apart from unlocks (a stand-in Runtime; no Ray)."""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from podium.gateway.auth import ANY_GAME
from podium.gateway.routes import ingest
from podium.settings import Settings
from podium.telemetry import metrics
from podium.wire.messages import AckStatus, Item, StatUpdate


class Batcher:
    def shedding(self, shards: int) -> bool:
        return False

    async def submit(self, shard: int, items: list[Item]) -> list[tuple[AckStatus, str | None]]:
        """Accepts unlocks; refuses stat updates of stat `nope` as the shard would."""
        return [(AckStatus.REJECTED, "unknown_stat") if isinstance(i, StatUpdate) and i.stat_id == "nope"
                else (AckStatus.ACCEPTED, None) for i in items]


class Limits:
    async def retry_after(self, kind: str, who: str, cost: int = 1) -> int | None:
        return None


class Rt:
    settings = Settings(token_secret="unit-test-secret")
    batcher = Batcher()
    limits = Limits()


def test_stat_updates_are_counted_apart_from_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: dict[str, dict[tuple[str, ...], int]] = {}

    def count_all(name: str, counts: Mapping[tuple[str, ...], int], keys: tuple[str, ...]) -> None:
        counted[name] = dict(counts)

    monkeypatch.setattr(metrics, "count_all", count_all)
    frame = [{"player_id": "p", "game_id": "g", "achievement_id": "a"},
             {"kind": "stat", "player_id": "p", "game_id": "g", "stat_id": "wins", "op": "incr", "value": 1,
              "event_id": "e1"},
             {"kind": "stat", "player_id": "p", "game_id": "g", "stat_id": "nope", "op": "incr", "value": 1,
              "event_id": "e2"},
             {"kind": "stat", "player_id": "p", "game_id": "g", "stat_id": "wins", "op": "incr", "value": 1.5,
              "event_id": "e3"}]  # invalid: not counted as a stat update (it never parsed as one)
    acks: Any = asyncio.run(ingest.acknowledge(Rt(), orjson.dumps(frame), ANY_GAME, "key"))  # type: ignore[arg-type]
    assert [a["status"] for a in acks] == ["accepted", "accepted", "rejected", "rejected"]
    unlocks = counted["podium_unlocks"]
    assert unlocks[("accepted", "")] == 2 and unlocks[("rejected", "unknown_stat")] == 1 and len(unlocks) == 3
    assert acks[3]["reason"].startswith("invalid: ")  # the ack names the field; the label is the code alone
    assert unlocks[("rejected", "invalid")] == 1
    assert counted["podium_stat_updates"] == {("accepted", ""): 1, ("rejected", "unknown_stat"): 1}

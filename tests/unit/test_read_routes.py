"""The public read routes' edge limits, checked before any shard is asked
(a stand-in Runtime; no Ray, no servers)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from podium.gateway import problems, queries
from podium.gateway.queries import MAX_AMONG
from podium.gateway.routes import reads
from podium.gateway.routes.deps import runtime
from podium.settings import Settings
from podium.wire.errors import UnknownGame
from podium.wire.messages import ALL_GAMES


class Reads:
    """Answers `among` with the ids it was asked for."""

    def __init__(self) -> None:
        self.settings = Settings(token_secret="unit-test-secret")
        self.asked: list[list[str]] = []

    async def require_game(self, game_id: str) -> None:
        return None

    def board(self, game_id: str, period: str, previous: bool) -> str:
        return game_id

    async def board_read(self, game_id: str, kind: str, *args: Any, alone: bool = False) -> Any:
        self.asked.append(args[-1])
        return {"entries": args[-1]}


def client(rt: Reads) -> TestClient:
    app = FastAPI()
    problems.install(app)
    app.include_router(reads.router)
    app.dependency_overrides[runtime] = lambda: rt
    return TestClient(app, raise_server_exceptions=False)


def test_among_takes_only_player_ids_the_edge_takes_elsewhere() -> None:
    """`players` is Ident like every player id: at most 64 characters, so the
    largest `among` (MAX_AMONG ids) stays within the shard's request cap."""
    rt = Reads()
    longest = ["p" * 63 + str(i % 10) for i in range(MAX_AMONG)]
    ok = client(rt).get("/v1/games/g/leaderboard/among", params=[("players", p) for p in longest])
    assert ok.status_code == 200 and rt.asked == [longest]
    for bad in ("p" * 65, "has space", ""):
        refused = client(rt).get("/v1/games/g/leaderboard/among", params=[("players", "alice"), ("players", bad)])
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_request", bad
    assert len(rt.asked) == 1  # nothing refused reached a shard


def test_progress_of_the_all_games_id_is_unknown_game_and_asks_no_shard() -> None:
    """require_game lets ALL_GAMES through (it names the cross-game board); a progress read of it would make the
    player shard reload its catalog for an id it can never hold."""

    class Progress(Reads):
        async def call(self, ref: Any) -> Any:
            raise AssertionError("a shard was asked")

        def player_shard(self, player_id: str) -> Any:
            raise AssertionError("a shard was asked")

    with pytest.raises(UnknownGame):
        asyncio.run(queries.progress(Progress(), "p", ALL_GAMES))  # type: ignore[arg-type]

"""Every HTTP error is problem+json, the unexpected ones too; health checks
never turn a missing actor into a 500."""
from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from podium.gateway import problems
from podium.gateway.routes.health import _check
from podium.wire.errors import OutOfBounds, Overloaded, ShardUnavailable, UnknownStat, WrongOperator


def client() -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @app.get("/slow")
    async def slow() -> None:
        raise TimeoutError

    @app.get("/busy")
    async def busy() -> None:
        raise Overloaded("10000 reads already wait")

    @app.get("/recovering")
    async def recovering() -> None:
        raise ShardUnavailable("leaderboard 0 is recovering")

    @app.get("/stat/{which}")
    async def stat(which: str) -> None:
        raise {"unknown": UnknownStat, "operator": WrongOperator, "bounds": OutOfBounds}[which](f"stat {which}")

    return TestClient(app, raise_server_exceptions=False)


def test_an_unexpected_error_is_a_problem_500() -> None:
    response = client().get("/bug")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal" and "a bug" not in response.text


def test_a_deadline_or_a_recovering_shard_is_503_with_retry_after() -> None:
    for path in ("/slow", "/recovering"):
        response = client().get(path)
        assert (response.status_code, response.json()["code"]) == (503, "unavailable"), path
        assert response.headers["retry-after"] == "1"


def test_a_full_read_queue_is_429_with_retry_after() -> None:
    response = client().get("/busy")
    assert (response.status_code, response.json()["code"], response.headers["retry-after"]) == (429, "overloaded", "1")


def test_a_check_that_cannot_even_find_its_actor_fails_alone() -> None:
    def missing() -> None:
        raise ValueError("Failed to look up actor with name 'player-shard-0'")

    async def fine() -> dict[str, int]:
        return {"players": 3}

    assert asyncio.run(_check(missing)) == {"ok": False, "error": repr(ValueError(
        "Failed to look up actor with name 'player-shard-0'"))}
    assert asyncio.run(_check(fine)) == {"ok": True, "players": 3}


def test_the_stat_errors_are_problems_with_their_codes() -> None:
    for which, status, code in (("unknown", 404, "unknown_stat"), ("operator", 422, "wrong_operator"),
                                ("bounds", 422, "out_of_bounds")):
        response = client().get(f"/stat/{which}")
        assert (response.status_code, response.json()["code"], response.json()["detail"]) == (
            status, code, f"stat {which}")

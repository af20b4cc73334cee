"""Fuzzing against a real cluster. Schemathesis walks the OpenAPI description
(every HTTP operation, generated and mutated inputs, with and without a
game server's key): no 5xx, every error a problem+json. Hypothesis throws
junk frames at the ingest socket (random bytes, wrong shapes, huge numbers,
deep nesting) and at a player socket's queries: each frame is answered or
the socket closes cleanly, and nothing that was refused is recorded."""
from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest
import schemathesis
import websockets.sync.client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import build_app
from gateway.auth import mint_token
from tests.integration.conftest import an_address

SCHEMA = schemathesis.openapi.from_dict(build_app().openapi())
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
PREFIX = f"fz{uuid.uuid4().hex[:6]}-"


def assert_answered_well(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        ctype = response.headers["content-type"]  # schemathesis gives each header as a list of values
        assert (ctype[0] if isinstance(ctype, list) else ctype) == "application/problem+json", response.text[:300]
        body = response.json()
        assert {"type", "title", "status", "detail", "code"} <= set(body) and body["status"] == response.status_code


@SCHEMA.parametrize()
@FUZZ
def test_every_operation_answers_without_5xx_and_errors_are_problems(case, cluster, api_key) -> None:
    headers = {"X-Forwarded-For": an_address()}
    assert_answered_well(case.call(base_url=cluster.base_url, headers=headers, timeout=30))
    assert_answered_well(case.call(base_url=cluster.base_url, headers={**headers, "X-API-Key": api_key}, timeout=30))


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
HUGE = st.integers(min_value=2**63, max_value=2**200) | st.just(1e308) | st.just(-(2**70))
PLAYER = (st.builds(lambda n: f"{PREFIX}{n}", st.integers(0, 40))
          | st.builds(lambda s: PREFIX + s, st.text(max_size=80)) | HUGE | JSON)
GAME = st.sampled_from(["arena", "puzzle", "nope", "", "ARENA"]) | JSON
ACHIEVEMENT = st.sampled_from(["a1", "a2", "p0", "p3", "zz", ""]) | JSON
ITEM = st.fixed_dictionaries({"player_id": PLAYER, "game_id": GAME, "achievement_id": ACHIEVEMENT},
                             optional={"id": st.text(max_size=10) | HUGE | JSON, "region": JSON,
                                       "client_at": HUGE | JSON | st.text(max_size=30), "extra": JSON})
DEEP = st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
DUMPS = json.dumps  # the stdlib writes any integer (orjson stops at 64 bits), NaN and Infinity too
FRAME = (st.binary(max_size=300) | st.text(max_size=300) | DEEP | JSON.map(DUMPS)
         | st.lists(ITEM, max_size=30).map(DUMPS) | st.lists(ITEM | JSON, max_size=10).map(DUMPS))


class Ingest:
    """One ingest socket for the whole fuzz run (reopened if the server closes it cleanly)."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.ws: Any = None
        self.accepted: set[tuple[str, str, str]] = set()
        self.closes: list[int] = []

    def send(self, frame: bytes | str) -> Any:
        if self.ws is None:
            self.ws = websockets.sync.client.connect(self.url, additional_headers={"X-API-Key": self.key},
                                                     max_size=None, open_timeout=30)
        try:
            self.ws.send(frame)
            return orjson.loads(self.ws.recv(timeout=30))
        except websockets.ConnectionClosed as exc:  # a clean close, with a code, is an answer too
            assert exc.rcvd is not None and exc.rcvd.code in (1003, 1007, 1009, 4408), exc  # 4408: hypothesis paused
            self.closes.append(exc.rcvd.code)
            self.ws = None
            return None


@pytest.fixture(scope="module")
def ingest(cluster, api_key) -> Any:
    client = Ingest(f"{cluster.ws_url}/v1/ws/ingest", api_key)
    yield client
    if client.ws is not None:
        client.ws.close()


@given(frame=FRAME)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_junk_ingest_frames_are_answered_and_only_accepted_items_recorded(ingest, frame) -> None:
    reply = ingest.send(frame)
    if reply is None:
        return
    items = _items(frame)
    if isinstance(reply, dict):  # a frame-level refusal, or an object with "q" answered as a query
        assert (set(reply) == {"error", "detail"} and reply["error"]) or reply.get("type") in ("result", "error"), reply
        return
    assert isinstance(reply, list) and items is not None and len(reply) == len(items), (frame[:200], reply)
    for item, ack in zip(items, reply, strict=True):
        assert ack["status"] in ("accepted", "duplicate", "rejected"), ack
        if ack["status"] == "rejected":
            assert ack["reason"], ack
        if ack["status"] == "accepted":
            ingest.accepted.add((item["player_id"], item["game_id"], item["achievement_id"]))


def _items(frame: bytes | str) -> list[Any] | None:
    try:
        data = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, list) else None


async def test_after_the_fuzz_the_journal_holds_exactly_what_was_accepted(ingest, db) -> None:
    rows = await db.fetch("SELECT player_id, game_id, achievement_id FROM unlocks WHERE player_id LIKE $1",
                          f"{PREFIX}%")
    assert {(r["player_id"], r["game_id"], r["achievement_id"]) for r in rows} == ingest.accepted


QUERY = st.fixed_dictionaries({"q": st.sampled_from(["page", "rank", "around", "among", "dashboard", "nope"]) | JSON},
                              optional={"id": st.integers() | st.text(max_size=5) | HUGE | JSON,
                                        "game_id": GAME, "player_id": PLAYER, "players": JSON | st.lists(PLAYER),
                                        "limit": st.integers() | HUGE | JSON, "k": st.integers() | JSON,
                                        "cursor": st.text(max_size=40) | JSON, "region": JSON,
                                        "period": st.sampled_from(["all", "day", "week", "year"]) | JSON,
                                        "previous": JSON})
QUERY_FRAME = QUERY.map(DUMPS) | st.text(max_size=100) | st.binary(max_size=100) | DEEP


@pytest.fixture(scope="module")
def player_socket(cluster) -> Any:
    player = f"{PREFIX}watcher"
    ws = websockets.sync.client.connect(f"{cluster.ws_url}/v1/ws/players/{player}?token="
                                        f"{mint_token(cluster.settings.token_secret, player, 600)}", open_timeout=30)
    assert orjson.loads(ws.recv(timeout=30))["type"] == "subscribed"
    yield ws
    ws.close()


@given(frame=QUERY_FRAME)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_junk_query_frames_on_a_player_socket_are_each_answered(player_socket, frame) -> None:
    if frame == "ping":
        return
    player_socket.send(frame)
    while True:
        reply = orjson.loads(player_socket.recv(timeout=30))
        if reply.get("type") != "update":  # a push may come in between
            break
    assert reply["type"] in ("result", "error"), reply
    if reply["type"] == "error":
        assert reply["code"] and isinstance(reply["detail"], str), reply

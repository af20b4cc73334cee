"""Fuzzing against a real cluster. Schemathesis walks the OpenAPI description
(every HTTP operation, generated and mutated inputs, with and without a
game server's key): no 5xx, every error Podium answers a problem+json; a
request too large for HAProxy's buffer gets HAProxy's own 400 instead, and
the largest legal one fits. Hypothesis throws junk frames at the ingest
socket (random bytes, wrong shapes, huge numbers, deep nesting) and at a
player socket's queries: each frame is answered or the socket closes
cleanly, and nothing that was refused is recorded. Derandomized in
`make test`, random with a printed seed in `make fuzz` (tests/randomness.py);
what a run found stays below as explicit cases."""
from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson
import pytest
import schemathesis
import websockets.sync.client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.gateway.app import build_app
from podium.gateway.auth import mint_token
from podium.gateway.frames import IDENT_MAX_LENGTH
from podium.gateway.limits import (
    HAPROXY_BUFSIZE,
    HAPROXY_MAXREWRITE,
    LARGEST_REQUEST_LINE,
    MAX_AMONG,
    REGION_MAX_LENGTH,
)
from podium.persistence import catalog_store
from tests.integration.conftest import an_address, eventually
from tests.randomness import SEED, examples

SCHEMA = schemathesis.openapi.from_dict(build_app().openapi(), config=schemathesis.Config(seed=SEED))
FUZZ = settings(max_examples=examples(20), deadline=None, suppress_health_check=list(HealthCheck))
PREFIX = f"fz{uuid.uuid4().hex[:6]}-"
HEAD_ROOM = HAPROXY_BUFSIZE - HAPROXY_MAXREWRITE  # request line + headers HAProxy takes (podium/gateway/limits.py)
HAPROXY_REFUSALS = (400, 414, 431)  # HAProxy's documented answers to a request it cannot parse or hold


def _header(response: Any, name: str) -> str:
    value = response.headers.get(name, "")  # schemathesis gives each header as a list of values
    return value[0] if isinstance(value, list) else value


def head_size(request: Any) -> int:
    """Bytes of a request's line and headers as sent (requests' PreparedRequest or httpx's Request)."""
    if isinstance(request, httpx.Request):
        target, headers = request.url.raw_path.decode(), dict(request.headers)
    else:
        target, headers = request.path_url, {"Host": "127.0.0.1:65535", **request.headers}
    lines = [f"{request.method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return sum(len(line.encode("utf-8", "replace")) + 2 for line in lines) + 2


def assert_answered_well(response: Any) -> None:
    """No 5xx; Podium answers every error with a problem+json. A request whose head outgrows HAProxy's buffer
    never reaches Podium: HAProxy's own 4xx (an HTML page) is the answer then, and only then."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code < 400:
        return
    size = head_size(response.request)
    if size > HEAD_ROOM - 256 and _header(response, "content-type").startswith("text/html"):  # 256: Host's guess
        assert response.status_code in HAPROXY_REFUSALS, (size, response.status_code, response.text[:300])
        return
    assert size <= HEAD_ROOM, ("HAProxy passed more than its buffer holds?", size)
    assert _header(response, "content-type") == "application/problem+json", (size, response.text[:300])
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body) and body["status"] == response.status_code


@SCHEMA.parametrize()
@FUZZ
def test_every_operation_answers_without_5xx_and_errors_are_problems(case, cluster, api_key) -> None:
    headers = {"X-Forwarded-For": an_address()}
    assert_answered_well(case.call(base_url=cluster.base_url, headers=headers, timeout=30))
    assert_answered_well(case.call(base_url=cluster.base_url, headers={**headers, "X-API-Key": api_key}, timeout=30))


# The largest legal `among`: MAX_AMONG ids of IDENT_MAX_LENGTH characters that encoders escape (':' and '@', 3 bytes
# each) on a game whose id is as long, the longest region and period. Its line is LARGEST_REQUEST_LINE bytes.
WIDE = (":@" * IDENT_MAX_LENGTH)[:IDENT_MAX_LENGTH]
TAIL = [("region", "r" * REGION_MAX_LENGTH), ("period", "week"), ("previous", "false")]


def among_target(game_id: str, players: list[str]) -> str:
    query = urlencode([("players", p) for p in players] + TAIL)
    return f"/v1/games/{quote(game_id, safe='')}/leaderboard/among?{query}"


@pytest.fixture(scope="module")
async def wide_game(cluster, db) -> str:
    """A game whose id is as long as an id may be, every character one that encoders escape."""
    async with db.acquire() as conn:
        await catalog_store.import_catalog(conn, [{"game_id": WIDE, "name": "Wide", "achievements": [
            {"achievement_id": WIDE, "name": "W", "points": 1}]}])
    async with httpx.AsyncClient(base_url=cluster.base_url, headers={"X-Forwarded-For": an_address()}) as client:
        async def known() -> bool:
            return (await client.get(f"/v1/games/{quote(WIDE, safe='')}/leaderboard")).status_code == 200
        await eventually(known)
    return WIDE


async def test_the_largest_legal_among_fits_haproxys_buffer_and_is_answered(http, wide_game) -> None:
    response = await http.get(among_target(wide_game, [WIDE] * MAX_AMONG))
    assert len(f"GET {response.request.url.raw_path.decode()} HTTP/1.1\r\n") == LARGEST_REQUEST_LINE
    assert response.status_code == 200, response.text[:300]
    assert response.json()["entries"] == []


@pytest.mark.parametrize("players", [[WIDE] * (MAX_AMONG + 1), [WIDE + ":"] * MAX_AMONG],
                         ids=["one-id-too-many", "ids-one-character-too-long"])
async def test_just_past_the_largest_among_podium_refuses_with_a_problem(http, wide_game, players) -> None:
    response = await http.get(among_target(wide_game, players))
    assert_answered_well(response)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request"), response.text[:300]


async def test_the_among_that_fuzzing_found_is_refused_by_podium_not_haproxy(http) -> None:
    """Schemathesis' find (issue 21): 200 ids of 100 characters got HAProxy's HTML 400 at Serve's 16 KiB buffer."""
    response = await http.get("/v1/games/arena/leaderboard/among", params={"players": ["p" * 100] * MAX_AMONG})
    assert_answered_well(response)
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"


async def test_a_request_past_haproxys_buffer_gets_haproxys_4xx_never_a_5xx(http) -> None:
    response = await http.get("/v1/games/arena/leaderboard/among", params={"players": ["p" * 64] * 500},
                              headers={"X-Padding": "x" * (HEAD_ROOM // 2)})  # httpx caps a URL at 64 KiB
    assert head_size(response.request) > HEAD_ROOM
    assert response.status_code in HAPROXY_REFUSALS and response.headers["content-type"].startswith("text/html")
    assert_answered_well(response)


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
# Stat updates: the test catalog's games have no stats, so a well-formed one is `unknown_stat`, a junk one
# `invalid`; either way nothing may be recorded (checked after the fuzz).
STAT_ITEM = st.fixed_dictionaries(
    {"kind": st.just("stat") | JSON, "player_id": PLAYER, "game_id": GAME,
     "stat_id": st.sampled_from(["wins", "", "a1"]) | JSON,
     "op": st.sampled_from(["incr", "max", "min", "set", "add"]) | JSON,
     "value": st.integers(-(2**53), 2**53) | HUGE | st.floats() | st.booleans() | JSON,
     "event_id": st.text(max_size=70) | JSON},
    optional={"id": st.text(max_size=10) | JSON, "region": JSON, "at": JSON | st.text(max_size=30),
              "achievement_id": ACHIEVEMENT})
DEEP = st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
DUMPS = json.dumps  # the stdlib writes any integer (orjson stops at 64 bits), NaN and Infinity too
FRAME = (st.binary(max_size=300) | st.text(max_size=300) | DEEP | JSON.map(DUMPS)
         | st.lists(ITEM, max_size=30).map(DUMPS) | st.lists(ITEM | JSON, max_size=10).map(DUMPS)
         | st.lists(STAT_ITEM | ITEM, max_size=20).map(DUMPS))


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
@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
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
            assert item.get("kind") in (None, "unlock"), (item, ack)  # no game of the test catalog has stats
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
    assert await db.fetchval("SELECT count(*) FROM stat_updates WHERE player_id LIKE $1", f"{PREFIX}%") == 0


QUERY = st.fixed_dictionaries({"q": st.sampled_from(["page", "rank", "around", "among", "dashboard", "progress",
                                                     "nope"]) | JSON},
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
@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
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

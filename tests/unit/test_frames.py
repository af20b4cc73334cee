import orjson
import pytest

from podium.gateway.frames import FrameError, item_ids, parse_frame
from podium.wire.messages import StatUpdate, Unlock


def parse(items: object, **kw: int) -> list:
    return parse_frame(orjson.dumps(items), max_items=kw.get("max_items", 10), max_bytes=kw.get("max_bytes", 10_000))


def test_good_items_pass_and_bad_items_are_rejected_alone() -> None:
    out = parse([
        {"id": 1, "player_id": "p", "game_id": "g", "achievement_id": "a", "region": "eu",
         "at": "2026-11-22T10:00:00Z"},
        {"id": 2, "player_id": "p p", "game_id": "g", "achievement_id": "a"},
        {"id": 3, "player_id": "p", "game_id": "g"},
        {"id": 4, "player_id": "p", "game_id": "g", "achievement_id": "a", "extra": 1},
        {"id": 5, "player_id": 7, "game_id": "g", "achievement_id": "a"},
        "not an object",
    ])
    assert out[0].unlock is not None and out[0].unlock.region == "eu" and out[0].unlock.client_at_us
    assert [o.id for o in out] == [1, 2, 3, 4, 5, None]
    assert all(o.unlock is None and o.reason.startswith("invalid") for o in out[1:])
    assert "achievement_id" in out[2].reason


def test_naive_time_is_rejected() -> None:
    [item] = parse([{"player_id": "p", "game_id": "g", "achievement_id": "a", "at": "2026-11-22T10:00:00"}])
    assert item.unlock is None and "timezone" in item.reason


@pytest.mark.parametrize(("raw", "code"), [
    (b"{nope", "malformed_json"), (b'{"a": 1}', "not_an_array"), (b"[" + b"{}," * 10 + b"{}]", "too_many_items"),
])
def test_bad_frames_are_refused_whole(raw: bytes, code: str) -> None:
    with pytest.raises(FrameError) as err:
        parse_frame(raw, max_items=10, max_bytes=10_000)
    assert err.value.code == code


def test_oversize_frame_is_refused_before_parsing() -> None:
    with pytest.raises(FrameError) as err:
        parse_frame(b"[" + b" " * 2000 + b"]", max_items=10, max_bytes=1024)
    assert err.value.code == "frame_too_large" and err.value.status == 413


def test_a_text_frame_is_measured_in_bytes_not_characters() -> None:
    item = {"player_id": "p", "game_id": "g", "achievement_id": "a", "id": "é" * 600}  # 600 chars, 1,200 bytes
    text = orjson.dumps([item]).decode()
    assert len(text) < 1024 < len(text.encode())
    with pytest.raises(FrameError) as err:
        parse_frame(text, max_items=10, max_bytes=1024)
    assert (err.value.code, err.value.status) == ("frame_too_large", 413)


def test_item_ids_skips_validation_but_not_the_frame_checks() -> None:
    raw = orjson.dumps([{"id": "a", "player_id": "not valid!"}, {"id": 7}, {"id": True}, "x"])
    assert item_ids(raw, max_items=10, max_bytes=10_000) == ["a", 7, None, None]
    with pytest.raises(FrameError) as err:
        item_ids(raw, max_items=3, max_bytes=10_000)
    assert err.value.code == "too_many_items"


STAT = {"kind": "stat", "player_id": "p", "game_id": "g", "stat_id": "wins", "op": "incr", "value": 1,
        "event_id": "e-1"}


def test_a_stat_update_passes_with_its_columns() -> None:
    [item] = parse([{**STAT, "id": 9, "region": "eu", "at": "2026-12-07T10:00:00Z"}])
    u = item.unlock
    assert isinstance(u, StatUpdate) and item.id == 9
    assert (u.player_id, u.game_id, u.stat_id, u.op, u.value, u.event_id, u.region) == (
        "p", "g", "wins", "incr", 1, "e-1", "eu")
    assert u.client_at_us


@pytest.mark.parametrize("value", [1.0, "1", True, None, 2**53, -(2**53), 2**70, [1]])
def test_a_stat_value_must_be_a_json_integer_within_the_safe_range(value: object) -> None:
    raw = orjson.dumps([{**STAT, "value": 0}]).replace(b'"value":0', b'"value":' + orjson.dumps(value)
                                                      if value != 2**70 else b'"value":' + str(2**70).encode())
    [item] = parse_frame(raw, max_items=10, max_bytes=10_000)
    assert item.unlock is None and item.reason.startswith("invalid: value")


@pytest.mark.parametrize("value", [2**53 - 1, -(2**53 - 1), 0, -5])
def test_safe_integers_pass(value: int) -> None:
    [item] = parse([{**STAT, "value": value}])
    assert isinstance(item.unlock, StatUpdate) and item.unlock.value == value


@pytest.mark.parametrize(("change", "field"), [
    ({"event_id": None}, "event_id"), ({"op": "add"}, "op"), ({"op": None}, "op"), ({"stat_id": "a b"}, "stat_id"),
    ({"achievement_id": "x"}, "achievement_id"), ({"kind": "stats"}, "kind"),
])
def test_bad_stat_updates_are_rejected_alone_naming_the_field(change: dict, field: str) -> None:
    item = {k: v for k, v in {**STAT, **change}.items() if v is not None}
    out = parse([item, STAT])
    assert out[0].unlock is None and field in out[0].reason and out[0].reason.startswith("invalid")
    assert isinstance(out[1].unlock, StatUpdate)


def test_an_unlock_may_say_its_kind() -> None:
    [item] = parse([{"kind": "unlock", "player_id": "p", "game_id": "g", "achievement_id": "a"}])
    assert isinstance(item.unlock, Unlock)
